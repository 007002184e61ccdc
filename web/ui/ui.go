// Package ui serves Presente's web app: one HTML page, its style sheet,
// its JavaScript modules and its message catalogs, all embedded in the
// binary. Nothing is fetched from anywhere else (DOMAIN.md: nothing leaves
// the server), and the strict Content-Security-Policy the web server sets
// holds: no inline script or style, no eval.
//
// The app is plain ES modules without a build step: what is in static/ is
// what the browser runs. Screens are routed by the URL's fragment
// (#/board), so the server serves the same page for "/" and "/join"
// (invitation links carry their token in the fragment).
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Assets is the app's files: index.html, app.css, js/, i18n/.
func Assets() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return sub
}

// asset is an embedded file ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the app: the page at "/" and "/join", the files under
// "/assets/". Files are revalidated by ETag on every use (Cache-Control:
// no-cache), so a phone on a slow connection downloads each only once per
// release.
type Handler struct {
	files     map[string]asset // by path under /assets/
	page      asset
	languages map[string]string
}

// New reads the embedded files.
func New() (*Handler, error) {
	h := &Handler{files: map[string]asset{}}
	err := fs.WalkDir(Assets(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Assets(), p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".json":
			ct = "application/json"
		}
		h.files[p] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.page = h.files["index.html"]
	// The language menu lists every catalog by its own name for itself:
	// adding a language is adding its catalog file.
	names := map[string]string{}
	for p, a := range h.files {
		dir, file := path.Split(p)
		if dir != "i18n/" || path.Ext(file) != ".json" || file == "languages.json" {
			continue
		}
		var catalog map[string]string
		if err := json.Unmarshal(a.body, &catalog); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", p, err)
		}
		if catalog["language.name"] == "" {
			return nil, fmt.Errorf("catalog %s: language.name is missing", p)
		}
		names[strings.TrimSuffix(file, ".json")] = catalog["language.name"]
	}
	h.languages = names
	list, err := json.Marshal(names)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(list)
	h.files["i18n/languages.json"] = asset{body: list, contentType: "application/json", etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	return h, nil
}

// Languages maps the tag of every catalog the app has (en, es) to the
// language's name for itself: the languages a user may choose.
func (h *Handler) Languages() map[string]string { return maps.Clone(h.languages) }

// ServePage serves the app's page.
func (h *Handler) ServePage(w http.ResponseWriter, r *http.Request) { h.serve(w, r, h.page) }

// ServeAsset serves GET /assets/{path...}.
func (h *Handler) ServeAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := h.files[strings.TrimPrefix(r.URL.Path, "/assets/")]
	if !ok || a.contentType == "" {
		http.NotFound(w, r)
		return
	}
	h.serve(w, r, a)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, a asset) {
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Cache-Control", "no-cache")
	// ServeContent answers If-None-Match against the ETag set above.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
