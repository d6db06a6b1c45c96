package main

import (
	"context"
	"fmt"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
)

// homeSections tells the home page the state of each section. The
// integrations report whether credentials are configured for them; each
// integration's own issue replaces its entry with a live status and a page.
func homeSections(cfg Config, accounts *account.Service) handlers.Sections {
	configured := func(ok bool, source string) (string, string) {
		if ok {
			return "Configured from " + source, "ok"
		}
		return "Not connected", "off"
	}
	return func(ctx context.Context, u services.User) ([]handlers.Section, error) {
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
		vapiState, vapiKind := configured(cfg.VapiAPIKey != "" && cfg.VapiAssistantID != "", "the environment")
		twilioState, twilioKind := configured(cfg.TwilioAccountSID != "" && cfg.TwilioAuthToken != "", "the environment")
		emailState, emailKind := configured(cfg.ResendAPIKey != "", "the environment")
		calState, calKind := configured(false, "")
		tokenState, tokenKind := "No active tokens", "off"
		if active > 0 {
			tokenState, tokenKind = fmt.Sprintf("%d active", active), "ok"
			if active == 1 {
				tokenState = "1 active"
			}
		}
		return []handlers.Section{
			{Name: "Vapi settings", Description: "What your assistant says first, how long calls may last, how fast it speaks.", State: vapiState, StateKind: vapiKind},
			{Name: "Phone numbers", Description: "The Twilio numbers that ring your receptionist.", State: twilioState, StateKind: twilioKind},
			{Name: "Email", Description: "Outgoing email through Resend.", State: emailState, StateKind: emailKind},
			{Name: "Calendar", Description: "Your Google Calendar, for booking.", State: calState, StateKind: calKind},
			{Name: "API tokens", Description: "Tokens for the JSON API.", Href: "/tokens", State: tokenState, StateKind: tokenKind},
		}, nil
	}
}
