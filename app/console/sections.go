package console

import (
	"context"
	"fmt"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
	"github.com/ava/console/services/integrations"
)

// homeSections tells the home page the state of each section: every
// integration's live status (from the registry), then the number of active
// API tokens.
func homeSections(accounts *account.Service, reg *integrations.Registry) handlers.Sections {
	return func(ctx context.Context, u services.User) ([]handlers.Section, error) {
		statuses, err := reg.Statuses(ctx, u.AccountID)
		if err != nil {
			return nil, err
		}
		tokens, err := accounts.Tokens(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		active := 0
		for _, t := range tokens {
			if !t.Revoked() {
				active++
			}
		}
		out := make([]handlers.Section, 0, len(statuses)+1)
		for _, st := range statuses {
			out = append(out, section(st))
		}
		tokenState, tokenKind := "No active tokens", "off"
		if active > 0 {
			tokenState, tokenKind = fmt.Sprintf("%d active", active), "ok"
		}
		return append(out, handlers.Section{
			Name: "API tokens", Description: "Tokens for the JSON API.", Href: "/tokens", State: tokenState, StateKind: tokenKind,
		}), nil
	}
}

// section states an integration: not connected, failing (open breaker or a
// last error newer than the last success), or connected and from where.
func section(st integrations.Status) handlers.Section {
	s := handlers.Section{Name: st.Spec.Label, Description: st.Spec.Blurb}
	if p := st.Spec.Page; p != nil {
		s.Name, s.Description, s.Href = p.Title, p.Description, p.Href
	}
	switch {
	case !st.Configured:
		s.State, s.StateKind = "Not connected", "off"
	case st.NeedsReconnect != "":
		s.State, s.StateKind = "Needs reconnect", "warn"
	case st.BreakerState == "open":
		s.State, s.StateKind = "Failing: calls paused", "warn"
	case st.Failing():
		s.State, s.StateKind = "Last call failed", "warn"
	case st.Source == integrations.SourceStub:
		s.State, s.StateKind = "Stub (development only)", "warn"
	case st.Source == integrations.SourceAccount:
		s.State, s.StateKind = "Connected", "ok"
	default:
		s.State, s.StateKind = "Connected (environment credentials)", "ok"
	}
	return s
}
