// Package e2e holds the browser tests of the Ava console.
//
// TestMain prepares, once per package run:
//   - the Playwright driver folder <repo>/.cache/playwright-driver-<version> (from
//     node_modules/playwright-core when it has the right version, else from `npm pack`);
//   - one headless Debian Chromium (/usr/bin/chromium, or $AVA_CHROMIUM), shared by all tests;
//   - the server binary, built from ./app into a temp folder.
//
// Each test then starts its own console process (startConsole), with fake upstream servers
// beside it (withUpstream), and opens pages in fresh browser contexts (newPage, newPhonePage).
// See harness_test.go for the API and auth_test.go for examples.
//
// Nothing here downloads browsers: playwright.Install is never called.
package e2e

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

// Set by TestMain, shared (read-only) by all tests of the package.
var (
	repoRoot     string                          // folder holding go.mod
	serverBinary string                          // the built ./app binary
	browser      playwright.Browser              // one Chromium for the whole package
	expect       playwright.PlaywrightAssertions // web-first assertions, 10s timeout
)

const (
	defaultChromium = "/usr/bin/chromium"
	pageTimeout     = 10 * time.Second
)

var chromiumArgs = []string{
	"--no-sandbox",
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--disable-dev-shm-usage",
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: browser tests skipped in -short mode")
		os.Exit(0)
	}
	code, err := setupAndRun(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setupAndRun(m *testing.M) (int, error) {
	var err error
	if repoRoot, err = findRepoRoot(); err != nil {
		return 0, err
	}
	chromium := os.Getenv("AVA_CHROMIUM")
	if chromium == "" {
		chromium = defaultChromium
	}
	if _, err := os.Stat(chromium); err != nil {
		return 0, fmt.Errorf("chromium not found at %s: run `go tool task test`, which installs it "+
			"(or: apt-get install -y --no-install-recommends chromium fonts-liberation; AVA_CHROMIUM overrides the path)", chromium)
	}

	buildDir, err := os.MkdirTemp("", "ava-e2e-bin-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(buildDir) }()

	// Build the server while the driver and the browser start.
	serverBinary = filepath.Join(buildDir, "ava")
	built := make(chan error, 1)
	go func() { built <- buildServer(serverBinary) }()

	pw, err := startPlaywright()
	if err != nil {
		return 0, errors.Join(err, <-built)
	}
	defer func() { _ = pw.Stop() }()

	browser, err = pw.Chromium.Launch(playwright.BrowserTypeLaunchOptions{
		ExecutablePath: playwright.String(chromium),
		Headless:       playwright.Bool(true),
		Args:           chromiumArgs,
	})
	if err != nil {
		return 0, errors.Join(fmt.Errorf("launch Chromium (%s): %w", chromium, err), <-built)
	}
	defer func() { _ = browser.Close() }()

	if err := <-built; err != nil {
		return 0, err
	}
	expect = playwright.NewPlaywrightAssertions(float64(pageTimeout.Milliseconds()))
	return m.Run(), nil
}

// findRepoRoot walks up from the working directory to the folder holding go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func buildServer(out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./app")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./app: %w\n%s", err, b)
	}
	return nil
}

// startPlaywright makes sure the driver folder exists, then starts the driver.
// It never downloads browsers.
func startPlaywright() (*playwright.Playwright, error) {
	opts := &playwright.RunOptions{SkipInstallBrowsers: true, Stdout: os.Stderr}
	driver, err := playwright.NewDriver(opts)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(repoRoot, ".cache", "playwright-driver-"+driver.Version)
	if err := ensureDriver(dir, driver.Version); err != nil {
		return nil, fmt.Errorf("prepare Playwright driver %s in %s: %w", driver.Version, dir, err)
	}
	opts.DriverDirectory = dir
	pw, err := playwright.Run(opts)
	if err != nil {
		return nil, fmt.Errorf("start Playwright driver: %w", err)
	}
	return pw, nil
}

// ensureDriver builds dir = {package/ (playwright-core), node -> system node} unless
// dir/package/cli.js already exists. It builds in a temp folder beside dir and renames it
// into place under a file lock, so parallel test packages never see half a driver.
func ensureDriver(dir, version string) error {
	cliJS := filepath.Join(dir, "package", "cli.js")
	if _, err := os.Stat(cliJS); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Close() }()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := os.Stat(cliJS); err == nil {
		return nil // another test package built it while we waited
	}

	node, err := exec.LookPath("node")
	if err != nil {
		return errors.New("node not found on PATH (Node.js 18+ is needed to run the Playwright driver)")
	}
	if node, err = filepath.Abs(node); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-driver-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	local := filepath.Join(repoRoot, "node_modules", "playwright-core")
	if packageVersion(local) == version {
		err = copyTree(local, filepath.Join(tmp, "package"))
	} else {
		err = npmPack("playwright-core@"+version, tmp)
	}
	if err != nil {
		return err
	}
	if err := os.Symlink(node, filepath.Join(tmp, "node")); err != nil {
		return err
	}
	out, err := exec.Command(filepath.Join(tmp, "node"), filepath.Join(tmp, "package", "cli.js"), "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("driver check `node package/cli.js --version`: %w\n%s", err, out)
	}
	if !strings.Contains(string(out), version) {
		return fmt.Errorf("driver check `node package/cli.js --version` gave %q, want %s", strings.TrimSpace(string(out)), version)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp made it 0700
		return err
	}
	// playwright.Run creates dir empty when missing; a folder without cli.js is junk.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// packageVersion returns the "version" of dir/package.json, or "" if unreadable.
func packageVersion(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return ""
	}
	var p struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &p) != nil {
		return ""
	}
	return p.Version
}

// copyTree copies the regular files, folders and symlinks of src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		}
		return nil
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	return writeFile(dst, in, perm)
}

func writeFile(dst string, r io.Reader, perm fs.FileMode) error {
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// npmPack fetches spec with `npm pack` and unpacks it into dir (entries sit under package/).
func npmPack(spec, dir string) error {
	cmd := exec.Command("npm", "pack", spec, "--silent")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		return fmt.Errorf("npm pack %s: %w\n%s", spec, err, stderr)
	}
	lines := strings.Fields(strings.TrimSpace(string(out)))
	if len(lines) == 0 {
		return fmt.Errorf("npm pack %s printed no file name", spec)
	}
	tgz := filepath.Join(dir, lines[len(lines)-1])
	defer func() { _ = os.Remove(tgz) }()
	return untarGz(tgz, dir)
}

func untarGz(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("unsafe path %q in %s", h.Name, file)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeFile(target, tr, fs.FileMode(h.Mode).Perm()); err != nil {
				return err
			}
		}
	}
}
