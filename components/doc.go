// Package components holds the templ components every page reuses: one
// component per UI state (skeleton, alert with retry, empty state, toast),
// the navigation, and the typed views of the integrations (the Integrations
// card, the Vapi settings rows, the Email page's parts). Pages and htmx
// fragments use these and never hand-roll their own.
package components
