// Package docs holds the console's documentation that the server serves:
// the OpenAPI 3.1 document of the JSON API.
package docs

import _ "embed"

// OpenAPI is the OpenAPI document, served at /api/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte
