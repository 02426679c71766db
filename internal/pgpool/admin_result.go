package pgpool

import (
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Type OIDs of the admin console's columns: PgBouncer describes names as text,
// counts as int4 or int8 and statistics as numeric.
const (
	oidInt8    = 20
	oidInt4    = 23
	oidText    = 25
	oidNumeric = 1700
)

// adminCol is one column of an admin console result.
type adminCol struct {
	name string
	oid  uint32
}

func textCol(name string) adminCol    { return adminCol{name, oidText} }
func int4Col(name string) adminCol    { return adminCol{name, oidInt4} }
func int8Col(name string) adminCol    { return adminCol{name, oidInt8} }
func numericCol(name string) adminCol { return adminCol{name, oidNumeric} }

// typeSize is the pg_type.typlen the RowDescription carries for a type.
func typeSize(oid uint32) int16 {
	switch oid {
	case oidInt4:
		return 4
	case oidInt8:
		return 8
	}
	return -1
}

// adminResult is a result set built in memory; the console's results are small.
type adminResult struct {
	cols []adminCol
	rows [][][]byte
}

func newResult(cols ...adminCol) *adminResult { return &adminResult{cols: cols} }

// add appends a row. Values are string, int, int64, uint64 or bool (as 0/1); nil and
// a nil *string are NULL.
func (r *adminResult) add(vals ...any) {
	row := make([][]byte, len(vals))
	for i, v := range vals {
		row[i] = adminCell(v)
	}
	r.rows = append(r.rows, row)
}

func adminCell(v any) []byte {
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
	panic("postgres: unsupported admin cell type")
}

// nullable returns a NULL cell for an empty string.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// rowDescription describes the result's columns as PgBouncer does: no table, text
// format, typmod -1.
func (r *adminResult) rowDescription() *pgproto3.RowDescription {
	fs := make([]pgproto3.FieldDescription, len(r.cols))
	for i, c := range r.cols {
		fs[i] = pgproto3.FieldDescription{
			Name:         []byte(c.name),
			DataTypeOID:  c.oid,
			DataTypeSize: typeSize(c.oid),
			TypeModifier: -1,
		}
	}
	return &pgproto3.RowDescription{Fields: fs}
}

// sendResult writes a result set, CommandComplete "SHOW" and ReadyForQuery.
func (c *client) sendResult(r *adminResult) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Send(r.rowDescription())
	for _, row := range r.rows {
		c.w.Send(&pgproto3.DataRow{Values: row})
	}
	return c.completeLocked("SHOW")
}

// sendComplete writes CommandComplete with tag and ReadyForQuery.
func (c *client) sendComplete(tag string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.completeLocked(tag)
}

// sendNoticeComplete writes a NoticeResponse, CommandComplete and ReadyForQuery.
func (c *client) sendNoticeComplete(n *pgproto3.NoticeResponse, tag string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Send(n)
	return c.completeLocked(tag)
}

func (c *client) completeLocked(tag string) error {
	c.w.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	c.w.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	c.pl.admin.console.sent.Add(int64(c.w.Buffered()))
	return c.w.Flush()
}
