package main

import (
	"context"
	"fmt"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
	"github.com/ava/console/services/integrations"
)

// homeSections tells the home page the state of each section: each
// integration's live status, and the number of active API tokens.
func homeSections(accounts *account.Service, statuses *integrations.Reporter) handlers.Sections {
	return func(ctx context.Context, u services.User) ([]handlers.Section, error) {
		sts, err := statuses.Statuses(ctx, u.AccountID)
		if err != nil {
			return nil, err
		}
		byName := map[string]integrations.Status{}
		for _, st := range sts {
			byName[st.Name] = st
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
		tokenState, tokenKind := "No active tokens", "off"
		if active > 0 {
			tokenState, tokenKind = fmt.Sprintf("%d active", active), "ok"
		}
		vapi := section("Vapi settings", "What your assistant says first, how long calls may last, how fast it speaks.",
			byName[services.IntegrationVapi])
		vapi.Href = "/vapi"
		numbers := section("Phone numbers", "The Twilio numbers that ring your receptionist.", byName[services.IntegrationTwilio])
		numbers.Href = "/numbers"
		return []handlers.Section{
			vapi,
			numbers,
			section("Email", "Outgoing email through Resend.", byName[services.IntegrationEmail]),
			section("Calendar", "Your Google Calendar, for booking.", byName[services.IntegrationCalendar]),
			{Name: "API tokens", Description: "Tokens for the JSON API.", Href: "/tokens", State: tokenState, StateKind: tokenKind},
		}, nil
	}
}

// section states an integration: not connected, failing (open breaker or a
// last error newer than the last success), or connected and from where.
func section(name, desc string, st integrations.Status) handlers.Section {
	s := handlers.Section{Name: name, Description: desc}
	switch {
	case !st.Configured:
		s.State, s.StateKind = "Not connected", "off"
	case st.BreakerState == "open":
		s.State, s.StateKind = "Failing: calls paused", "warn"
	case st.LastErrorAt != nil && (st.LastOKAt == nil || st.LastErrorAt.After(*st.LastOKAt)):
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
