package postgres

// loginAdmin authenticates a client of the admin console.
func (c *client) loginAdmin(g *Config) error {
	return fatalf(CodeInvalidCatalogName, "admin console not available")
}

// runAdmin serves the admin console until the client leaves.
func (c *client) runAdmin() error { return nil }
