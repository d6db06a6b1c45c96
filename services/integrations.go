package services

import (
	"context"
	"time"
)

// Integration names, as stored and as the API spells them.
const (
	IntegrationVapi     = "vapi"
	IntegrationTwilio   = "twilio"
	IntegrationEmail    = "email"
	IntegrationCalendar = "calendar"
)

// StoredCredentials are an account's own credentials for one integration:
// sealed (encrypted with AVA_SECRET_KEY) and their masked hints.
type StoredCredentials struct {
	AccountID   int64
	Integration string
	Sealed      []byte
	// Hints are the masked values safe to show ("••••abcd"), by field.
	Hints     map[string]string
	UpdatedAt time.Time
}

// IntegrationHealth is what the console remembers of an integration's last
// calls for one account.
type IntegrationHealth struct {
	LastError   string
	LastErrorAt *time.Time
	LastOKAt    *time.Time
}

// SettingChange is one entry of the audit trail: who changed which setting
// of an integration, from what to what, and when. Values are JSON.
type SettingChange struct {
	ID          int64
	AccountID   int64
	UserID      int64
	UserEmail   string
	Integration string
	Key         string
	OldValue    string
	NewValue    string
	ChangedAt   time.Time
}

// OutboxEmail is an email the development stub of the Email integration
// "sent": kept in the database, never delivered.
type OutboxEmail struct {
	AccountID int64
	MessageID string
	From      string
	To        string
	Subject   string
	Text      string
	SentAt    time.Time
}

// IntegrationStore keeps credentials, health and the audit trail.
type IntegrationStore interface {
	SaveCredentials(ctx context.Context, c StoredCredentials) error
	// Credentials returns the account's stored credentials; ENOTFOUND if none.
	Credentials(ctx context.Context, accountID int64, integration string) (StoredCredentials, error)
	// DeleteCredentials removes them and reports whether there were any.
	DeleteCredentials(ctx context.Context, accountID int64, integration string) (bool, error)
	RecordIntegrationError(ctx context.Context, accountID int64, integration, message string, at time.Time) error
	RecordIntegrationOK(ctx context.Context, accountID int64, integration string, at time.Time) error
	IntegrationHealth(ctx context.Context, accountID int64, integration string) (IntegrationHealth, error)
	RecordSettingChange(ctx context.Context, c SettingChange) error
	// SettingChanges returns the newest changes first, at most limit; of
	// every integration when integration is "".
	SettingChanges(ctx context.Context, accountID int64, integration string, limit int) ([]SettingChange, error)
	// LatestSettingChange returns the newest change of one setting of an
	// integration; found is false when the trail has none.
	LatestSettingChange(ctx context.Context, accountID int64, integration, key string) (c SettingChange, found bool, err error)
	// LatestSettingChanges returns the newest change of each setting of an
	// integration that the trail has, newest first.
	LatestSettingChanges(ctx context.Context, accountID int64, integration string) ([]SettingChange, error)
	// FirstAccountID returns the id of the first account created (the one
	// the environment's credentials serve by default); ENOTFOUND if none.
	FirstAccountID(ctx context.Context) (int64, error)
}

// OutboxStore keeps what the development stub of the Email integration
// "sent".
type OutboxStore interface {
	AddOutboxEmail(ctx context.Context, e OutboxEmail) error
	// OutboxEmails returns an account's latest emails, newest first, at most limit.
	OutboxEmails(ctx context.Context, accountID int64, limit int) ([]OutboxEmail, error)
}
