package nutyml

import (
	"gopkg.in/yaml.v3"
)

// readReplicas reads kvproxy's replicas: a mapping from a server to a list of addresses.
func (r *poolReader) readReplicas(v *yaml.Node) {
	const key = "replicas"
	if v.Kind != yaml.MappingNode {
		r.errorf(v.Line, key, ErrStructure, "must map servers to lists of replicas, not be %s", kindName(v))
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, list := v.Content[i], v.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			r.errorf(k.Line, key, ErrStructure, "a server must be a non-empty value")
			continue
		}
		if list.Kind != yaml.SequenceNode {
			r.errorf(list.Line, key, ErrStructure, "the replicas of %q must be a list, not %s", k.Value, kindName(list))
			continue
		}
		var reps []Replica
		for _, item := range list.Content {
			if item.Kind != yaml.ScalarNode || item.Value == "" {
				r.errorf(item.Line, key, ErrStructure, "a replica must be a non-empty value, not %s", kindName(item))
				continue
			}
			rep, msg := parseReplica(item.Value)
			if msg != "" {
				r.errorf(item.Line, key, ErrInvalidValue, "%s", msg)
				continue
			}
			rep.Line = item.Line
			reps = append(reps, rep)
		}
		r.replicas = append(r.replicas, serverRef[[]Replica]{ref: k.Value, line: k.Line, value: reps})
	}
}

// readPasswords reads kvproxy's server_passwords: a mapping from a server to a password.
func (r *poolReader) readPasswords(v *yaml.Node) {
	const key = "server_passwords"
	if v.Kind != yaml.MappingNode {
		r.errorf(v.Line, key, ErrStructure, "must map servers to passwords, not be %s", kindName(v))
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, pw := v.Content[i], v.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			r.errorf(k.Line, key, ErrStructure, "a server must be a non-empty value")
			continue
		}
		if pw.Kind != yaml.ScalarNode || pw.Value == "" {
			r.errorf(pw.Line, key, ErrMissing, "the password of %q must be a non-empty value", k.Value)
			continue
		}
		r.passwords = append(r.passwords, serverRef[string]{ref: k.Value, line: k.Line, value: pw.Value})
	}
}

// findServer returns the index of the server that ref names: the server with that name,
// else the only server with that address ("host:port" as written, or the socket path).
func (r *poolReader) findServer(key, ref string, line int) int {
	for i, s := range r.p.Servers {
		if s.Name == ref {
			return i
		}
	}
	found := -1
	for i, s := range r.p.Servers {
		if serverAddrAsWritten(s) != ref {
			continue
		}
		if found >= 0 {
			r.errorf(line, key, ErrInvalidValue, "%q is the address of more than one server: use the server's name", ref)
			return -1
		}
		found = i
	}
	if found < 0 {
		r.errorf(line, key, ErrInvalidValue, "no server named %q or with that address in servers", ref)
	}
	return found
}

// serverAddrAsWritten is "host:port" as in the servers entry, or the socket path.
func serverAddrAsWritten(s Server) string {
	if s.Unix {
		return s.Host
	}
	return s.Host + ":" + itoa(s.Port)
}

func (r *poolReader) resolveReplicas() {
	seen := map[int]bool{}
	for _, ref := range r.replicas {
		i := r.findServer("replicas", ref.ref, ref.line)
		if i < 0 {
			continue
		}
		if seen[i] {
			r.errorf(ref.line, "replicas", ErrDuplicate, "server %q is given replicas twice", r.p.Servers[i].Name)
			continue
		}
		seen[i] = true
		r.p.Servers[i].Replicas = ref.value
	}
}

func (r *poolReader) resolvePasswords() {
	seen := map[int]bool{}
	for _, ref := range r.passwords {
		i := r.findServer("server_passwords", ref.ref, ref.line)
		if i < 0 {
			continue
		}
		if seen[i] {
			r.errorf(ref.line, "server_passwords", ErrDuplicate, "server %q is given a password twice", r.p.Servers[i].Name)
			continue
		}
		seen[i] = true
		r.p.Servers[i].Password = ref.value
	}
}
