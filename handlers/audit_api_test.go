package handlers_test

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ava/console/services"
)

// TestAuditAPI: GET /api/v1/audit lists the trail newest first, with the
// values as JSON, the actor's email (null once the user is gone), and
// refuses bad parameters naming them.
func TestAuditAPI(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	tok := a.apiOwner(false)
	a.connectAPI(tok)
	before := time.Now().Add(-time.Second)

	if got := a.auditTrail(tok, "?integration=vapi&limit=50").Changes; len(got) != 0 {
		t.Fatalf("a new account's trail: %+v", got)
	}
	for _, put := range []struct{ key, body string }{
		{"greeting_message", `{"value":"Hi, \"Ava\" <here> & ready."}`},
		{"max_call_duration", `{"value":900}`},
		{"voice_speed", `{"value":1.1}`},
		{"max_call_duration", `{"value":1200}`},
	} {
		if resp, body := a.vapiCall(tok, http.MethodPut, "/api/v1/vapi/settings/"+put.key, put.body); resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", put.key, resp.StatusCode, body)
		}
	}

	t.Run("newest first, values as JSON", func(t *testing.T) {
		got := a.auditTrail(tok, "?integration=vapi&limit=50").Changes
		want := []struct {
			key      string
			from, to any
		}{
			{"max_call_duration", 900.0, 1200.0},
			{"voice_speed", 1.0, 1.1},
			{"max_call_duration", 600.0, 900.0},
			{"greeting_message", "Hello, thanks for calling. How can I help you today?", `Hi, "Ava" <here> & ready.`},
		}
		if len(got) != len(want) {
			t.Fatalf("%d changes, want %d: %+v", len(got), len(want), got)
		}
		for i, c := range got {
			if c.Key != want[i].key || c.From != want[i].from || c.To != want[i].to || c.Integration != "vapi" {
				t.Errorf("change %d: %s %#v -> %#v, want %s %#v -> %#v", i, c.Key, c.From, c.To, want[i].key, want[i].from, want[i].to)
			}
			if c.Actor == nil || *c.Actor != ownerEmail {
				t.Errorf("change %d: actor %v, want %s", i, c.Actor, ownerEmail)
			}
			at, err := time.Parse(time.RFC3339, c.At)
			if err != nil || at.Before(before.Truncate(time.Second)) || at.After(time.Now().Add(time.Second)) {
				t.Errorf("change %d at %q", i, c.At)
			}
			if i > 0 && c.ID >= got[i-1].ID {
				t.Errorf("ids %d then %d: want newest (largest) first", got[i-1].ID, c.ID)
			}
		}
	})

	t.Run("limit and integration", func(t *testing.T) {
		if got := a.auditTrail(tok, "?integration=vapi&limit=1").Changes; len(got) != 1 || got[0].To != 1200.0 {
			t.Errorf("limit=1: %+v", got)
		}
		if got := a.auditTrail(tok, "?integration=vapi").Changes; len(got) != 4 {
			t.Errorf("default limit: %d changes", len(got))
		}
		if got := a.auditTrail(tok, "?limit=200").Changes; len(got) != 4 {
			t.Errorf("every integration: %d changes", len(got))
		}
		if got := a.auditTrail(tok, "?integration=twilio").Changes; len(got) != 0 {
			t.Errorf("twilio: %+v", got)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		for _, tt := range []struct{ query, field, says string }{
			{"?integration=nope", "integration", `integration must be one of vapi, twilio, email, calendar (got "nope")`},
			{"?integration=", "integration", "integration must be one of"},
			{"?integration=Vapi", "integration", "integration must be one of"},
			{"?integration=vapi&limit=0", "limit", "limit must be a whole number from 1 to 200"},
			{"?integration=vapi&limit=201", "limit", `(got "201")`},
			{"?integration=vapi&limit=-1", "limit", "from 1 to 200"},
			{"?integration=vapi&limit=ten", "limit", "from 1 to 200"},
			{"?integration=vapi&limit=1.5", "limit", "from 1 to 200"},
			{"?integration=vapi&limit=", "limit", "from 1 to 200"},
		} {
			resp, body := a.callAPI(apiRequest{path: "/api/v1/audit" + tt.query, token: tok})
			p := assertProblem(t, resp, body, http.StatusUnprocessableEntity)
			if p.Field != tt.field || !strings.Contains(p.Detail, tt.says) {
				t.Errorf("%s: %+v, want field %s saying %q", tt.query, p, tt.field, tt.says)
			}
		}
		resp, body := a.callAPI(apiRequest{path: "/api/v1/audit?integration=vapi"})
		assertProblem(t, resp, body, http.StatusUnauthorized)
	})

	t.Run("another account sees none of it", func(t *testing.T) {
		other, _ := a.otherOwner("second@example.com", false)
		if got := a.auditTrail(other, "?integration=vapi").Changes; len(got) != 0 {
			t.Errorf("another account's trail: %+v", got)
		}
	})

	t.Run("actor null once the user is gone", func(t *testing.T) {
		ctx := context.Background()
		owner, _, err := a.db.UserByEmail(ctx, ownerEmail)
		if err != nil {
			t.Fatal(err)
		}
		gone, err := a.db.CreateUser(ctx, "gone@example.com", "not-a-hash", false)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.db.RecordSettingChange(ctx, services.SettingChange{
			AccountID: owner.AccountID, UserID: gone.ID, Integration: "vapi", Key: "voice_speed",
			OldValue: "1.1", NewValue: "0.9", ChangedAt: time.Now(),
		}); err != nil {
			t.Fatal(err)
		}
		path, _ := a.console.Config.SQLitePath()
		raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = raw.Close() }()
		if _, err := raw.ExecContext(ctx, "DELETE FROM users WHERE id = ?", gone.ID); err != nil {
			t.Fatal(err)
		}
		got := a.auditTrail(tok, "?integration=vapi&limit=1").Changes
		if len(got) != 1 || got[0].Actor != nil || got[0].From != 1.1 || got[0].To != 0.9 {
			t.Errorf("the change of a deleted user: %+v", got)
		}
		resp, body := a.callAPI(apiRequest{path: "/api/v1/audit?integration=vapi&limit=1", token: tok})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"actor":null`) {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
}
