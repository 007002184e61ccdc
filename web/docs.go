package web

import (
	_ "embed"
	"net/http"

	"github.com/presente-dispatch/presente/infra/accounts"
)

// openAPI documents every route; TestTheOpenAPIDocumentListsEveryRoute
// keeps it true to the route table.
//
//go:embed openapi.yaml
var openAPI []byte

// handleOpenAPI serves GET /api/v1/openapi.yaml: the API's documentation.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	_, _ = w.Write(openAPI)
	return nil
}
