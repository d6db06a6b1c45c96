package console

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ava/console/static"
)

// TestFrontEndCheck: a binary whose embedded front-end files are missing
// (plain `go build`, static/vendor left empty) refuses to start and says
// which file and which build command.
func TestFrontEndCheck(t *testing.T) {
	empty := fstest.MapFS{
		"app.js":          {Data: []byte("(function(){})();")},
		"app.css":         {Data: []byte("body{}")},
		"vendor/.gitkeep": {Data: nil},
	}
	err := CheckFrontEnd(empty)
	if err == nil {
		t.Fatal("a build without static/vendor/htmx.min.js was accepted")
	}
	for _, want := range []string{"static/vendor/htmx.min.js", "go tool task build", "go build"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not name %q", err, want)
		}
	}
	// An empty file is as good as none.
	empty["vendor/htmx.min.js"] = &fstest.MapFile{}
	if err := CheckFrontEnd(empty); err == nil {
		t.Fatal("an empty htmx.min.js was accepted")
	}
	empty["vendor/htmx.min.js"] = &fstest.MapFile{Data: []byte("var htmx=function(){}();")}
	if err := CheckFrontEnd(empty); err == nil || !strings.Contains(err.Error(), "static/vendor/htmx-ext-sse.min.js") {
		t.Fatalf("a build without the SSE extension: %v, want it named", err)
	}
	empty["vendor/htmx-ext-sse.min.js"] = &fstest.MapFile{Data: []byte("(function(){})();")}
	if err := CheckFrontEnd(empty); err != nil {
		t.Fatalf("a complete build was refused: %v", err)
	}
	// This test binary was built the way `go tool task test` builds it.
	if err := CheckFrontEnd(static.FS); err != nil {
		t.Fatalf("the embedded files: %v", err)
	}
}

// TestNewRefusesAMissingFrontEnd: console.New runs the check (serve stops
// with its message before opening anything).
func TestNewRefusesAMissingFrontEnd(t *testing.T) {
	saved := frontEnd
	t.Cleanup(func() { frontEnd = saved })
	frontEnd = fstest.MapFS{"app.js": {Data: []byte("x")}, "app.css": {Data: []byte("x")}}
	cfg, err := LoadConfig(envOf(map[string]string{
		"AVA_ENV": "development", "AVA_SECRET_KEY": testKey,
		"DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "ava.db"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), cfg, io.Discard, Options{})
	if err == nil {
		_ = c.Close()
		t.Fatal("console.New built a console without htmx")
	}
	if !strings.Contains(err.Error(), "static/vendor/htmx.min.js is not embedded") {
		t.Fatalf("error: %v", err)
	}
}
