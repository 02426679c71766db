// Package memcache is memcached's wire protocols as a sharding proxy needs them: the
// ASCII protocol, the meta commands (which share a text connection with it) and the
// binary protocol. It parses client requests with limits, routes them by key through
// a caller's Sharder, splits multi-key gets per server and merges the sub-replies, and
// frames server replies. It knows nothing of sockets, pools or hashing; parsers never
// retain the input buffer (splits copy what they keep).
//
// # Pieces
//
//   - Detect: binary (first byte 0x80) or text, once per client connection.
//   - ParseText / TextRequest: get, gets, gat, gats (multi-key), set, add, replace,
//     append, prepend, cas (data block framed by its length, never scanned), delete,
//     incr, decr, touch, noreply on each of those, version, quit, verbosity,
//     flush_all, stats; meta mg, ms, md, ma, mn, me with their flags (b base64 key
//     decoded for routing, q quiet, O opaque of at most 32 bytes, ...).
//   - TextReplyLen: the length of the first text reply (VALUE...END, VA + block, STAT
//     lines, or one line).
//   - TextSplit: one "get k1 k2" per server, merged back in request order with one END.
//   - ParseBinary / BinaryRequest, BinaryReplyLen, BinaryGroup (getq/getkq multi-get).
//   - Conn and Plan: all of the above put together per client connection; what the
//     engine adapter drives.
//
// # Limits (on by default)
//
// Keys are 1 to 250 bytes (MaxKeyLen; text keys without control characters; a meta b
// key up to the base64 length of 250 bytes, decoding to at most 250). Limits.MaxValue
// (default 1 MiB, memcached's -I) bounds a value: an oversized one is not an error but
// answered as memcached does ("SERVER_ERROR object too large for cache", binary status
// 0x03) with its bytes skipped as they arrive; for set, as memcached, the key is also
// deleted on its server. Limits.MaxLine (64 KiB) bounds a text line, Limits.MaxGroup
// (1024) a binary multi-get group, Limits.MaxReply (64 MiB) a server reply.
//
// # Choices for commands twemproxy does not route
//
//   - verbosity, flush_all, stats: parsed (arguments and noreply checked), then
//     refused as twemproxy refuses them: no reply, the client connection is closed
//     (Plan.Close). flush_all and stats cannot be answered for one server of many
//     without misleading the client.
//   - gat, gats: routed and split like get (twemproxy lists them as planned).
//   - meta commands: routed by key (twemproxy defers them); mn is answered by the
//     proxy; me is routed by key.
//   - version: routed like the key "placeholder", answered by that one server, as
//     twemproxy does.
//   - unknown or upper-case commands, malformed lines, bad keys: a *ProtocolError;
//     twemproxy closes the connection without a reply, and so should the engine.
//   - "delete <key> 0": accepted and forwarded, as memcached 1.6 accepts it.
//   - binary flush, stat, SASL and unknown opcodes: answered by the proxy with status
//     0x81 (unknown command), and the connection goes on, as memcached does for
//     opcodes it does not know. Binary noop and quit are answered by the proxy; quitq
//     closes without a reply.
//
// # How replies are matched: the server form
//
// Conn sends every request so that the server answers it exactly once, and applies the
// client's reply rules itself:
//
//   - ASCII noreply is removed before sending; the server's reply is then dropped
//     (errors included, as memcached 1.6 suppresses them once it parsed noreply). No
//     stray reply can then reach a server connection's reply matching (a malformed
//     noreply line may still draw an error from memcached).
//   - meta q is removed; the nominal reply (mg: EN; ms, md, ma: HD) is dropped,
//     anything else delivered.
//   - binary quiet opcodes sent alone become their non-quiet counterparts; the nominal
//     reply (getq/getkq/gatq/gatkq: a miss; mutations: success) is dropped, anything
//     else delivered with the client's quiet opcode and opaque restored.
//   - a binary multi-get (getq/getkq run, then noop, get or getk) is one request:
//     each server gets its keys as quiet gets with the proxy's opaques, then a noop
//     (the terminating get/getk goes last to its own server instead); BinaryReplyLen
//     frames the hits and that final packet as one reply. Merge rebuilds the client's
//     replies in its order with its opaques, then the noop reply at the end.
//   - mn and a lone binary noop are answered by the proxy. Since the engine writes a
//     client's answers in request order, the MN or noop answer follows every earlier
//     answer, from every server, which is what the terminator promises.
//
// So each Part gets exactly one reply as Codec.ReplyLen frames it (TextReplyLen for a
// text connection's parts, BinaryReplyLen for a binary one's), the engine's
// one-request-one-reply matching per server connection stays exact, and no request is
// ever without a reply on the server side. Plan.Expect and Plan.Terminator still say
// what the client expects (ExpectNone, ExpectMaybe, terminators), for an engine that
// would rather pass quiet requests through unchanged; ParseText and ParseBinary expose
// the same per request.
//
// # What the engine (internal/kv) must do to drive this package
//
// An adapter (internal/kv/kvmemcache) maps Conn and Plan onto kv.Codec and kv.Session:
// Session.Parse calls Conn.Parse, adds one kv.Frag per Plan.Parts entry (Shard,
// ReadOnly, Payload copied), copies Local and Close, and keeps the Plan in
// kv.Request.Scratch (one Plan per kv.Request, since a batch of requests is parsed
// before any is answered); Session.Merge calls Conn.Reply with that Plan. From the
// engine it needs:
//
//  1. Merge called for every request with fragments when Plan.Rewrite is set, one
//     fragment included (today one fragment's reply is written unchanged), and an
//     empty answer accepted (nothing is written for that request).
//  2. Codec.ReplyLen chosen per server connection's protocol: the servers speak what
//     the client spoke, so a pool serving both needs text and binary server
//     connections (or the adapter sends binary clients' requests only to binary
//     connections). The simplest engine-side rule: a pool's server connections speak
//     the protocol of a Codec per protocol, with ServerInfo or the Frag telling which.
//  3. A Local answer that may be empty (noreply refusals, skipped value bytes) and a
//     request that consumes bytes yet has neither parts nor an answer.
//  4. Proxy errors (Codec.AppendError) as a text line "SERVER_ERROR <text>\r\n"
//     (AppendServerError, twemproxy's texts such as "Connection timed out"); Reply
//     turns it into a binary response with StatusInternalError for binary clients,
//     restoring opcode and opaque.
//  5. Optionally, for twemproxy parity: close the client connection when Conn.Reply
//     reports failed (a multi-get with a failed part; twemproxy sends one SERVER_ERROR
//     then closes). kvmemcache does not: the reply is complete and the stream in step,
//     so the client's later requests are served.
//  6. A client read buffer of at least MaxLine + MaxValue + 2 bytes (a whole request
//     with its data block is parsed at once) and MaxGroup*274 bytes for a binary group.
//
// What this package needs from the engine: nothing beyond a Sharder (kv.Router fits)
// and calling Parse with the unconsumed bytes of the client's stream in order.
//
// If the engine instead makes no-reply requests and terminators first-class (a request
// may have no server reply; a terminator's reply proves every earlier request on that
// server connection answered), it may forward requests unchanged (TextRequest.Raw,
// BinaryRequest.Raw) using Expect and Terminator, but it must then also (a) put a
// terminator of its own (mn, binary noop) after a client's quiet requests before
// another client's request on the same server connection, and swallow its reply,
// since an absent reply cannot be told from the next one, and (b) answer a client's
// mn or noop only after all servers its earlier requests went to have answered theirs.
package memcache
