package components

import (
	"strconv"
	"time"

	"github.com/ava/console/services/integrations"
)

func itoa(n int) string { return strconv.Itoa(n) }

// When shows a time as the console does everywhere: "2 Jan 2006, 15:04 UTC".
func When(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }

// ISO is a time for a datetime attribute.
func ISO(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// hintText is a field's hint, with the environment variable that can supply it.
func hintText(f integrations.Field) string {
	switch {
	case f.Hint != "" && f.EnvVar != "":
		return f.Hint + " Server-wide: " + f.EnvVar + "."
	case f.EnvVar != "":
		return "Server-wide: " + f.EnvVar + "."
	}
	return f.Hint
}

// OutboxItem is one email of the stub's outbox.
type OutboxItem struct {
	ID, From, To, Subject, Text string
	SentAt                      time.Time
}
