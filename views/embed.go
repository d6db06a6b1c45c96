// Package views holds the page templates, rendered by Fiber's html engine
// (gofiber/template/html). Pages compose with html/template's own
// {{template "page_start" .}} / {{template "page_end" .}} from partials/,
// never with the engine's layout argument (it serialises every render). The
// reusable UI states come from the templ components through template
// functions that the handlers register (skeleton, alert, emptyState...).
package views

import "embed"

// FS holds every template; names are paths without ".html" ("tokens",
// "fragments/token_list").
//
//go:embed *.html partials/*.html fragments/*.html
var FS embed.FS
