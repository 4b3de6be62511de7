package httpapi

import (
	"net/http"
)

func handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeBody(w, http.StatusOK, "application/json", []byte("{\"status\":\"ok\"}\n"))
}
