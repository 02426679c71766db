package admin

import (
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Type OIDs of the console's columns: PgBouncer describes names as text, counts as
// int4 or int8 and statistics as numeric.
const (
	OIDInt8    = 20
	OIDInt4    = 23
	OIDText    = 25
	OIDNumeric = 1700
)

// Column is one column of a console result.
type Column struct {
	Name string
	OID  uint32
}

func textCol(name string) Column    { return Column{name, OIDText} }
func int4Col(name string) Column    { return Column{name, OIDInt4} }
func int8Col(name string) Column    { return Column{name, OIDInt8} }
func numericCol(name string) Column { return Column{name, OIDNumeric} }

// typeSize is the pg_type.typlen the RowDescription carries for a type.
func typeSize(oid uint32) int16 {
	switch oid {
	case OIDInt4:
		return 4
	case OIDInt8:
		return 8
	}
	return -1
}

// Result is a result set built in memory; the console's results are small. Each row
// has one text-format value per column, nil for NULL.
type Result struct {
	Columns []Column
	Rows    [][][]byte
}

func newResult(cols ...Column) *Result { return &Result{Columns: cols} }

// add appends a row. Values are string, int, int64, uint64 or bool (as 0/1); nil and
// a nil *string are NULL.
func (r *Result) add(vals ...any) {
	row := make([][]byte, len(vals))
	for i, v := range vals {
		row[i] = cell(v)
	}
	r.Rows = append(r.Rows, row)
}

func cell(v any) []byte {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return []byte(v)
	case *string:
		if v == nil {
			return nil
		}
		return []byte(*v)
	case int:
		return strconv.AppendInt(nil, int64(v), 10)
	case int64:
		return strconv.AppendInt(nil, v, 10)
	case uint64:
		return strconv.AppendUint(nil, v, 10)
	case bool:
		if v {
			return []byte("1")
		}
		return []byte("0")
	}
	panic("admin: unsupported cell type")
}

// nullable returns a NULL cell for an empty string.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// RowDescription describes the result's columns as PgBouncer does: no table, text
// format, typmod -1.
func (r *Result) RowDescription() *pgproto3.RowDescription {
	fs := make([]pgproto3.FieldDescription, len(r.Columns))
	for i, c := range r.Columns {
		fs[i] = pgproto3.FieldDescription{
			Name:         []byte(c.Name),
			DataTypeOID:  c.OID,
			DataTypeSize: typeSize(c.OID),
			TypeModifier: -1,
		}
	}
	return &pgproto3.RowDescription{Fields: fs}
}

// Column returns the values of the named column, nil if there is none; for tests
// and tools reading a result by name.
func (r *Result) Column(name string) []string {
	for i, c := range r.Columns {
		if c.Name == name {
			vals := make([]string, len(r.Rows))
			for j, row := range r.Rows {
				vals[j] = string(row[i])
			}
			return vals
		}
	}
	return nil
}
