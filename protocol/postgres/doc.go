// Package postgres is the PostgreSQL wire protocol as a pooler needs it, free of
// sockets and pools: framing and startup packets (package wire, on pgproto3's message
// types), authentication exchanges (package auth: SCRAM-SHA-256, md5, cleartext), and
// the small classifiers a transaction pooler must apply to what passes through it:
//
//   - SET, RESET, DISCARD and set_config, and which of them a pooler can follow from
//     one server connection to the next (ParseSet, ParseSetConfig), with the
//     statement that replays a followed value (SetOp.Statement);
//   - the startup parameter "options" (ParseOptions, as libpq's PGOPTIONS);
//   - statements that take or release session state a pooler cannot move: advisory
//     locks, LISTEN, SQL PREPARE, WITH HOLD cursors, temporary tables
//     (SessionStateChange);
//   - statements and replies that end a transaction, drop prepared statements or
//     change the schema (EndsTransaction, ParseDeallocate, DropsAllStatements,
//     SchemaChangeTag), and the SQLSTATE and severity of an ErrorResponse.
//
// Classifiers read raw message bytes and decide on the first word where they can, so
// the common statement costs no allocation. They are fuzzed with committed corpora.
// The pooler built on this package is internal/pgpool.
package postgres
