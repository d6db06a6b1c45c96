package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/vapi"
)

// VapiSettings is what the handlers need of the Vapi settings service.
type VapiSettings interface {
	Connection(ctx context.Context, accountID int64) (integrations.Resolved, error)
	List(ctx context.Context, accountID int64) ([]vapi.Setting, error)
	// Update returns the updated setting; on failure, the setting as it
	// was before (zero when it could not be read) with the error.
	Update(ctx context.Context, accountID, userID int64, key string, raw json.RawMessage) (vapi.Setting, error)
	Changes(ctx context.Context, accountID int64, limit int) ([]services.SettingChange, error)
}

// vapiRoutes registers the Vapi settings page, its fragments and API. Listing
// settings reaches Vapi every time: 10 a minute, one budget for the page's
// fragment and the JSON API together.
func (h *Handlers) vapiRoutes(r router, d policy) {
	list := policy{name: "vapi-settings-list", max: h.cfg.VapiListLimit}
	r.get("/vapi", d, h.requirePage, h.vapiShow)
	r.get("/fragments/vapi/settings", list, h.requirePage, h.vapiSettingsFragment)
	r.post("/vapi/settings/:key", d, h.requirePage, h.vapiSettingSave)
	r.get("/fragments/vapi/changes", d, h.requirePage, h.vapiChangesFragment)
	r.get("/api/v1/vapi/settings", list, h.requireAPI, h.apiVapiSettings)
	r.put("/api/v1/vapi/settings/:key", d, h.requireAPI, h.apiVapiSettingPut)
}

// recentChanges is how many audit entries the settings page shows.
const recentChanges = 20

type vapiPage struct {
	Connection integrations.Resolved
}

// vapiShow paints the settings page at once; the settings and the recent
// changes arrive as fragments.
func (h *Handlers) vapiShow(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	conn, err := h.vapi.Connection(c.UserContext(), u.AccountID)
	if err != nil {
		return err
	}
	return h.renderPage(c, "vapi", "Vapi settings", "vapi", vapiPage{Connection: conn})
}

// vapiSettingsFragment lists the settings as they are at Vapi now, or the
// empty state when Vapi is not connected.
func (h *Handlers) vapiSettingsFragment(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	settings, err := h.vapi.List(c.UserContext(), u.AccountID)
	if integrations.IsNotConnected(err) {
		return renderComponent(c, components.EmptyStateLink(
			"Vapi is not connected",
			"Connect your Vapi assistant to see and change its greeting, call length and voice speed.",
			"/integrations", "Connect Vapi",
		))
	}
	if err != nil {
		return err
	}
	rows := make([]components.SettingRow, 0, len(settings))
	for _, s := range settings {
		rows = append(rows, components.SettingRow{Setting: s, CSRF: csrfToken(c)})
	}
	return renderComponent(c, components.SettingsList(rows))
}

// vapiSettingSave saves one setting from the page. The row comes back with
// the new value and a toast, or with the old value and why the save failed.
func (h *Handlers) vapiSettingSave(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	key := c.Params("key")
	input := c.FormValue("value")
	updated, err := h.vapi.Update(ctx, u.AccountID, u.ID, key, vapi.FormJSON(key, input))
	if err == nil {
		h.log.InfoContext(ctx, "vapi setting saved", "key", key)
		if !isHTMX(c) {
			return c.Redirect("/vapi", fiber.StatusSeeOther)
		}
		c.Set("HX-Trigger", "vapi-changed")
		if err := renderComponent(c, components.SettingRowView(components.SettingRow{Setting: updated, CSRF: csrfToken(c)})); err != nil {
			return err
		}
		return toast(c, components.ToastSuccess, updated.Label+" saved")
	}
	code := services.ErrorCode(err)
	if !isHTMX(c) || code == services.EINTERNAL || code == services.ENOTFOUND && !vapi.KnownKey(key) || integrations.IsNotConnected(err) {
		return err
	}
	// A refused or failed save: show the row as it was before the save
	// (Update read it), else as it is now at Vapi (when it can be read),
	// the user's input, and the reason. After a timeout Vapi is not asked
	// again: that would double the wait.
	appErr := asAppError(err)
	if appErr.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retrySeconds(appErr.RetryAfter)))
	}
	row := components.SettingRow{Input: input, Error: services.ErrorMessage(err), CSRF: csrfToken(c)}
	switch {
	case updated.Key == key:
		row.Setting = updated
	case code == services.ETIMEOUT:
		row.Setting = vapi.Setting{Key: key, Label: vapi.Label(key)}
	default:
		if current, lerr := h.vapi.List(ctx, u.AccountID); lerr == nil {
			row.Setting, _ = vapi.Find(current, key)
		} else {
			row.Setting = vapi.Setting{Key: key, Label: vapi.Label(key)}
			row.Error += " " + services.ErrorMessage(lerr)
		}
	}
	h.log.InfoContext(ctx, "vapi setting not saved", "key", key, "code", string(code), "reason", row.Error)
	c.Status(statusOf(code))
	return renderComponent(c, components.SettingRowView(row))
}

type changesList struct {
	Changes []services.SettingChange
}

// vapiChangesFragment is the "Recent changes" list.
func (h *Handlers) vapiChangesFragment(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	changes, err := h.vapi.Changes(c.UserContext(), u.AccountID, recentChanges)
	if err != nil {
		return err
	}
	return h.renderFragment(c, "fragments/vapi_changes", changesList{Changes: changes})
}

// settingJSON is a setting in the JSON API.
type settingJSON struct {
	Key       string `json:"key"`
	Value     any    `json:"value"`
	UpdatedAt string `json:"updated_at"`
}

func toSettingJSON(s vapi.Setting) settingJSON {
	return settingJSON{Key: s.Key, Value: s.Value, UpdatedAt: s.UpdatedAt.UTC().Format(timeFormat)}
}

// apiVapiSettings is GET /api/v1/vapi/settings.
func (h *Handlers) apiVapiSettings(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	settings, err := h.vapi.List(c.UserContext(), u.AccountID)
	if err != nil {
		return err
	}
	out := struct {
		Settings []settingJSON `json:"settings"`
	}{Settings: []settingJSON{}}
	for _, s := range settings {
		out.Settings = append(out.Settings, toSettingJSON(s))
	}
	return c.JSON(out)
}

// apiVapiSettingPut is PUT /api/v1/vapi/settings/{key} with {"value": ...}.
func (h *Handlers) apiVapiSettingPut(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	key := c.Params("key")
	if !vapi.KnownKey(key) {
		return services.Errorf(services.ENOTFOUND, "Unknown setting %q. Settings: %s.", key, strings.Join(vapi.Keys, ", "))
	}
	shape := strictBody{
		fields: []string{"value"}, first: "value",
		notObject: fmt.Sprintf(`The body must be a JSON object with a "value" member: %s takes %s.`, key, vapi.Allowed(key)),
		takes:     fmt.Sprintf(`the body is {"value": ...}, and %s takes %s.`, key, vapi.Allowed(key)),
	}
	members, err := shape.decode(c.Body())
	if err != nil {
		return err
	}
	value := members["value"]
	if len(value) == 0 || string(value) == "null" {
		return services.FieldError("value", `The body must be a JSON object with a "value" member: %s takes %s.`, key, vapi.Allowed(key))
	}
	s, err := h.vapi.Update(c.UserContext(), u.AccountID, u.ID, key, value)
	if err != nil {
		return err
	}
	return c.JSON(toSettingJSON(s))
}
