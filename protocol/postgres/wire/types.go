package wire

// Frontend (client to server) message types.
const (
	Bind         = 'B'
	Close        = 'C'
	CopyData     = 'd'
	CopyDone     = 'c'
	CopyFail     = 'f'
	Describe     = 'D'
	Execute      = 'E'
	Flush        = 'H'
	FunctionCall = 'F'
	Parse        = 'P'
	Password     = 'p'
	Query        = 'Q'
	Sync         = 'S'
	Terminate    = 'X'
)

// Backend (server to client) message types.
const (
	Authentication       = 'R'
	BackendKeyData       = 'K'
	BindComplete         = '2'
	CloseComplete        = '3'
	CommandComplete      = 'C'
	CopyBothResponse     = 'W'
	CopyInResponse       = 'G'
	CopyOutResponse      = 'H'
	DataRow              = 'D'
	EmptyQueryResponse   = 'I'
	ErrorResponse        = 'E'
	FunctionCallResponse = 'V'
	NegotiateProtocol    = 'v'
	NoData               = 'n'
	NoticeResponse       = 'N'
	NotificationResponse = 'A'
	ParameterDescription = 't'
	ParameterStatus      = 'S'
	ParseComplete        = '1'
	PortalSuspended      = 's'
	ReadyForQuery        = 'Z'
	RowDescription       = 'T'
)

// Startup packet codes (the 32-bit word after the length).
const (
	ProtocolVersion3 = 196608
	SSLRequestCode   = 80877103
	GSSENCRequest    = 80877104
	CancelRequest    = 80877102
)

// Body returns a regular message's body: msg without its 5-byte header.
func Body(msg []byte) []byte { return msg[HeaderSize:] }
