package nutyml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/poolsuite/poolsuite/sharding"
)

// MaxFileSize bounds the files Load and Parse read.
const MaxFileSize = 16 << 20

// Load reads and parses the file at path; see Parse.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("nutyml: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("nutyml: %s: %w", path, err)
	}
	return Parse(data)
}

// Parse reads a nutcracker.yml and validates it (see Validate). On any problem it returns
// a nil Config and an Errors listing every problem found.
func Parse(data []byte) (*Config, error) {
	var pr problems
	if len(data) > MaxFileSize {
		pr.add(0, "", "", ErrInvalidValue, "file is larger than %d bytes", MaxFileSize)
		return nil, pr.err()
	}
	checkMarkers(data, &pr)
	root := decodeDocument(data, &pr)
	if root == nil {
		return nil, pr.err()
	}
	checkYAMLFeatures(root, &pr)
	cfg := readConfig(root, &pr)
	cfg.validate(&pr)
	if err := pr.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

var yamlErrorLine = regexp.MustCompile(`line (\d+)`)

// decodeDocument returns the root node of the file's only YAML document.
func decodeDocument(data []byte, pr *problems) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root *yaml.Node
	for n := 0; ; n++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line := 0
			if m := yamlErrorLine.FindStringSubmatch(err.Error()); m != nil {
				line, _ = strconv.Atoi(m[1])
			}
			pr.add(line, "", "", ErrSyntax, "%v", err)
			return nil
		}
		if n > 0 {
			pr.add(doc.Line, "", "", ErrSyntax, "more than one YAML document")
			return nil
		}
		if len(doc.Content) == 1 {
			root = doc.Content[0]
		}
	}
	if root == nil {
		pr.add(0, "", "", ErrMissing, "no pools: the file is empty")
	}
	return root
}

// checkMarkers reports document markers ("---", "...") and directives ("%YAML"), which
// twemproxy rejects. They can only appear at the start of a line; inside a scalar such a
// line is a YAML error anyway.
func checkMarkers(data []byte, pr *problems) {
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case bytes.HasPrefix(line, []byte("%")):
			pr.add(i+1, "", "", ErrSyntax, "directives (%%YAML, %%TAG) are not allowed")
		case isMarker(line, "---"), isMarker(line, "..."):
			pr.add(i+1, "", "", ErrSyntax, "document markers (--- and ...) are not allowed")
		}
	}
}

// isMarker reports whether line is the document marker m, alone or followed by a space.
func isMarker(line []byte, m string) bool {
	return bytes.HasPrefix(line, []byte(m)) && (len(line) == len(m) || line[len(m)] == ' ' || line[len(m)] == '\t')
}

// checkYAMLFeatures reports the YAML that twemproxy's reader rejects: flow collections,
// anchors, aliases and explicit tags.
func checkYAMLFeatures(n *yaml.Node, pr *problems) {
	switch {
	case n.Kind == yaml.AliasNode:
		pr.add(n.Line, "", "", ErrSyntax, "aliases (*%s) are not allowed", n.Value)
		return
	case n.Anchor != "":
		pr.add(n.Line, "", "", ErrSyntax, "anchors (&%s) are not allowed", n.Anchor)
	case n.Style&yaml.TaggedStyle != 0:
		pr.add(n.Line, "", "", ErrSyntax, "tags (%s) are not allowed", n.Tag)
	case n.Style&yaml.FlowStyle != 0 && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode):
		pr.add(n.Line, "", "", ErrSyntax, "flow style ([...] or {...}) is not allowed")
		return
	}
	for _, c := range n.Content {
		checkYAMLFeatures(c, pr)
	}
}

// kindName names a node's kind for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a value"
	default:
		return "an alias"
	}
}

// readConfig reads the top level: pool names mapped to pools, and kvproxy's top-level
// keys mapped to scalars.
func readConfig(root *yaml.Node, pr *problems) *Config {
	cfg := &Config{}
	if root.Kind != yaml.MappingNode {
		pr.add(root.Line, "", "", ErrStructure, "the top level must map pool names to pools, not be %s", kindName(root))
		return cfg
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			pr.add(k.Line, "", "", ErrStructure, "a pool name must be a non-empty value")
			continue
		}
		switch {
		case v.Kind == yaml.MappingNode:
			cfg.Pools = append(cfg.Pools, readPool(k, v, pr))
		case v.Kind == yaml.ScalarNode && k.Value == "metrics_listen":
			if cfg.MetricsListenLine != 0 {
				pr.add(k.Line, "", k.Value, ErrDuplicate, "is a duplicate")
				continue
			}
			cfg.MetricsListenLine = k.Line
			if v.Value == "" {
				pr.add(v.Line, "", k.Value, ErrMissing, "has no value")
				continue
			}
			cfg.MetricsListen = v.Value
		default:
			pr.add(k.Line, k.Value, "", ErrStructure, "a pool must be a mapping of keys to values, not %s", kindName(v))
		}
	}
	return cfg
}

// poolReader holds what readPool gathers before it can resolve references to servers.
type poolReader struct {
	p         *Pool
	pr        *problems
	replicas  []serverRef[[]Replica]
	passwords []serverRef[string]
}

// serverRef is a value given for a server by name or address, at line.
type serverRef[T any] struct {
	ref   string
	line  int
	value T
}

func readPool(name, body *yaml.Node, pr *problems) *Pool {
	r := &poolReader{p: newPool(name.Value, name.Line), pr: pr}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i], body.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			r.errorf(k.Line, "", ErrStructure, "a key must be a non-empty value")
			continue
		}
		if _, dup := r.p.lines[k.Value]; dup {
			r.errorf(k.Line, k.Value, ErrDuplicate, "is a duplicate")
			continue
		}
		r.readKey(k, v)
	}
	slices.SortStableFunc(r.p.Servers, func(a, b Server) int { return sharding.CompareNames(a.Name, b.Name) })
	r.resolveReplicas()
	r.resolvePasswords()
	return r.p
}

func (r *poolReader) errorf(line int, key string, sentinel error, format string, args ...any) {
	r.pr.add(line, r.p.Name, key, sentinel, format, args...)
}

// readKey reads one key of a pool.
func (r *poolReader) readKey(k, v *yaml.Node) {
	key := k.Value
	set, known := scalarKeys[key]
	switch {
	case key == "servers":
		r.p.lines[key] = k.Line
		r.readServers(v)
		return
	case key == "replicas":
		r.p.lines[key] = k.Line
		r.readReplicas(v)
		return
	case key == "server_passwords":
		r.p.lines[key] = k.Line
		r.readPasswords(v)
		return
	case !known:
		r.errorf(k.Line, key, ErrUnknownKey, "is unknown")
		return
	}
	r.p.lines[key] = k.Line
	if v.Kind != yaml.ScalarNode {
		r.errorf(k.Line, key, ErrStructure, "must be a value, not %s", kindName(v))
		return
	}
	if v.Value == "" {
		r.errorf(v.Line, key, ErrMissing, "has no value")
		return
	}
	if msg, sentinel := set(r.p, v.Value); msg != "" {
		r.errorf(v.Line, key, sentinel, "%s", msg)
	}
}

// setter stores a scalar value in a pool, or returns why it cannot.
type setter func(p *Pool, value string) (msg string, sentinel error)

var scalarKeys = map[string]setter{
	"listen": func(p *Pool, v string) (string, error) {
		l, msg := parseListen(v)
		if msg != "" {
			return msg, ErrInvalidValue
		}
		p.Listen = l
		return "", nil
	},
	"hash":     func(p *Pool, v string) (string, error) { p.Hash = v; return "", nil },
	"hash_tag": func(p *Pool, v string) (string, error) { p.HashTag = v; return "", nil },
	"distribution": func(p *Pool, v string) (string, error) {
		d, err := sharding.ParseDistribution(v)
		if err != nil {
			return fmt.Sprintf("%q is not a valid distribution (ketama, modula, random)", v), ErrInvalidValue
		}
		p.Distribution = d
		return "", nil
	},
	"timeout": numSetter(func(p *Pool, n int) {
		p.Timeout, p.TimeoutSet = time.Duration(n)*time.Millisecond, true
	}),
	"backlog":              numSetter(func(p *Pool, n int) { p.Backlog = n }),
	"client_connections":   numSetter(func(p *Pool, n int) { p.ClientConnections = n }),
	"redis_db":             numSetter(func(p *Pool, n int) { p.RedisDB = n }),
	"server_connections":   numSetter(func(p *Pool, n int) { p.ServerConnections = n }),
	"server_failure_limit": numSetter(func(p *Pool, n int) { p.ServerFailureLimit = n }),
	"server_retry_timeout": numSetter(func(p *Pool, n int) {
		p.ServerRetryTimeout = time.Duration(n) * time.Millisecond
	}),
	"client_timeout": numSetter(func(p *Pool, n int) {
		p.ClientTimeout = time.Duration(n) * time.Millisecond
	}),
	"client_write_timeout": numSetter(func(p *Pool, n int) {
		p.ClientWriteTimeout = time.Duration(n) * time.Millisecond
	}),
	"tcpkeepalive":     boolSetter(func(p *Pool, b bool) { p.TCPKeepalive = b }),
	"reuseport":        boolSetter(func(p *Pool, b bool) { p.ReusePort = b }),
	"preconnect":       boolSetter(func(p *Pool, b bool) { p.Preconnect = b }),
	"redis":            boolSetter(func(p *Pool, b bool) { p.Redis = b }),
	"auto_eject_hosts": boolSetter(func(p *Pool, b bool) { p.AutoEjectHosts = b }),
	"redis_auth":       func(p *Pool, v string) (string, error) { p.RedisAuth = v; return "", nil },
	"server_password":  func(p *Pool, v string) (string, error) { p.ServerPassword = v; return "", nil },
	"read_policy": func(p *Pool, v string) (string, error) {
		rp, err := sharding.ParseReadPolicy(v)
		if err != nil {
			return fmt.Sprintf("%q is not a valid read policy (primary, prefer-primary, replica, prefer-replica)", v), ErrInvalidValue
		}
		p.ReadPolicy = rp
		return "", nil
	},
}

// numSetter reads a number as twemproxy does: decimal digits only.
func numSetter(set func(*Pool, int)) setter {
	return func(p *Pool, v string) (string, error) {
		n, ok := parseNum(v)
		if !ok {
			return fmt.Sprintf("%q is not a number", v), ErrInvalidValue
		}
		set(p, n)
		return "", nil
	}
}

// boolSetter reads a boolean as twemproxy does: exactly "true" or "false".
func boolSetter(set func(*Pool, bool)) setter {
	return func(p *Pool, v string) (string, error) {
		switch v {
		case "true":
			set(p, true)
		case "false":
			set(p, false)
		default:
			return fmt.Sprintf("%q is not \"true\" or \"false\"", v), ErrInvalidValue
		}
		return "", nil
	}
}

// parseNum parses a non-empty string of decimal digits that fits in an int32.
func parseNum(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
		if n > math.MaxInt32 {
			return 0, false
		}
	}
	return n, true
}

func (r *poolReader) readServers(v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		r.errorf(v.Line, "servers", ErrStructure, "must be a list, not %s", kindName(v))
		return
	}
	for _, item := range v.Content {
		if item.Kind != yaml.ScalarNode || item.Value == "" {
			r.errorf(item.Line, "servers", ErrStructure, "an entry must be a non-empty value, not %s", kindName(item))
			continue
		}
		spec, err := sharding.ParseServer(item.Value)
		if serr, ok := errors.AsType[*sharding.ServerError](err); ok {
			r.errorf(item.Line, "servers", ErrInvalidValue, "%q: %s", item.Value, serr.Reason)
			continue
		} else if err != nil {
			r.errorf(item.Line, "servers", ErrInvalidValue, "%q: %v", item.Value, err)
			continue
		}
		r.p.Servers = append(r.p.Servers, Server{ServerSpec: spec, Line: item.Line})
	}
}
