package nutyml

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that every problem it reports carries one of
// the sentinels, and that what it accepts is valid. Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, tt := range goodFiles {
		f.Add([]byte(tt.data))
	}
	for _, tt := range badFiles {
		f.Add([]byte(tt.data))
	}
	sentinels := []error{ErrSyntax, ErrStructure, ErrUnknownKey, ErrDuplicate, ErrInvalidValue, ErrMissing}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			if cfg != nil {
				t.Fatal("Config and error both returned")
			}
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			for _, e := range list {
				ok := false
				for _, s := range sentinels {
					ok = ok || errors.Is(e, s)
				}
				if !ok {
					t.Fatalf("problem without a sentinel: %v", e)
				}
				_ = e.Error()
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
		for _, p := range cfg.Pools {
			if len(p.Servers) == 0 || p.Listen.Raw == "" {
				t.Fatalf("pool %q accepted without servers or listen", p.Name)
			}
			if _, err := p.ShardingConfig(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
