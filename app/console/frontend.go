package console

import (
	"fmt"
	"io/fs"

	"github.com/ava/console/static"
)

// frontEnd is the embedded static files the pages load (tests replace it).
var frontEnd fs.FS = static.FS

// frontEndFiles are the files static/vendor must hold: copied from npm by
// `go tool task build` (deps:npm), absent from a plain `go build`.
var frontEndFiles = []string{"vendor/htmx.min.js", "vendor/htmx-ext-sse.min.js"}

// CheckFrontEnd refuses a build whose embedded front-end files are missing:
// without htmx every page would hang on its skeletons.
func CheckFrontEnd(fsys fs.FS) error {
	for _, name := range frontEndFiles {
		info, err := fs.Stat(fsys, name)
		if err != nil || info.IsDir() || info.Size() == 0 {
			return fmt.Errorf("static/%s is not embedded: build with `go tool task build` (it installs the front-end packages), not plain go build", name)
		}
	}
	return nil
}
