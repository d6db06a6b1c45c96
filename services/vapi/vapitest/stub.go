package vapitest

// The stub's credentials: what an account resolves to when
// INTEGRATIONS_STUB_MODE is on (development only) and nothing is configured.
const (
	StubKey         = "stub-vapi-key"
	StubAssistantID = "stub-assistant"
)

// NewStub returns a fake seeded with the stub's key and assistant, served
// in process: the console's built-in stand-in for Vapi.
func NewStub() *Server {
	s := New()
	s.AddKey(StubKey)
	a := DefaultAssistant(StubAssistantID)
	a["name"] = "Stub assistant"
	s.PutAssistant(a)
	return s
}
