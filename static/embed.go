// Package static holds the console's own CSS and JS, and, under vendor/,
// third-party files copied from npm at build time (gitignored).
package static

import "embed"

// FS is served under /static/.
//
//go:embed app.css app.js all:vendor
var FS embed.FS
