package twiliotest

// The stub's credentials: what an account resolves to when
// INTEGRATIONS_STUB_MODE is on (development only) and nothing is configured.
// twilio-go refuses credentials that are not alphanumeric, so they look real.
//
//nolint:gosec // G101: the stub's made-up credentials, not secrets
const (
	StubAccountSID = "AC000000000000000000000000000057b0"
	StubAuthToken  = "57b057b057b057b057b057b057b057b0"
)

// NewStub returns a fake seeded with the stub's account and three numbers,
// served in process: the console's built-in stand-in for Twilio.
func NewStub() *Server {
	s := New()
	s.AddAccount(StubAccountSID, StubAuthToken, 0)
	s.SetNumbers(StubAccountSID, []Number{
		{SID: "PN000000000000000000000000000057b1", PhoneNumber: "+14155550101", FriendlyName: "Stub front desk", Voice: true, SMS: true},
		{SID: "PN000000000000000000000000000057b2", PhoneNumber: "+14155550102", FriendlyName: "Stub after hours", Voice: true},
		{SID: "PN000000000000000000000000000057b3", PhoneNumber: "+14155550103", FriendlyName: "Stub text line", SMS: true, MMS: true},
	})
	return s
}
