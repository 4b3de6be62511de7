package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Discovery: a verifier that knows only a token's issuer finds the JWKS
// through a metadata document (OpenID Connect Discovery 1.0 and RFC 8414
// give the same two members jwtd has: issuer and jwks_uri).
//
//   - At the root, /.well-known/openid-configuration and
//     /.well-known/oauth-authorization-server describe the default
//     profile's issuer.
//   - A profile whose issuer is a URL with a path, such as
//     https://jwtd.example.com/castlabs, has its document where RFC 8414
//     puts it, the well-known name between the host and the path:
//     /.well-known/oauth-authorization-server/castlabs, and the same under
//     /.well-known/openid-configuration/castlabs.
//
// jwks_uri is the JWKS of the issuer's host when the issuer is an http(s)
// URL (jwtd is what answers there), else the one of the host the request
// came to. Every profile's keys are in the one JWKS, told apart by kid.

// discoveryDocument is the metadata of one issuer.
type discoveryDocument struct {
	Issuer                 string   `json:"issuer"`
	JWKSURI                string   `json:"jwks_uri"`
	ResponseTypesSupported []string `json:"response_types_supported"`
	SubjectTypesSupported  []string `json:"subject_types_supported"`
	SigningAlgs            []string `json:"id_token_signing_alg_values_supported"`
}

// handleDiscovery answers both well-known names, at the root and with an
// issuer's path after them.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) error {
	svc := s.Tokens()
	path := "/" + r.PathValue("issuer_path")
	var issuer string
	if path == "/" {
		if p, ok := svc.Profile("default"); ok {
			issuer = p.Issuer
		}
	} else {
		var paths []string
		for _, p := range svc.Profiles() {
			u, ok := issuerURL(p.Issuer)
			if !ok || u.Path == "" || u.Path == "/" {
				continue
			}
			if strings.TrimSuffix(u.Path, "/") == strings.TrimSuffix(path, "/") {
				issuer = p.Issuer
				break
			}
			paths = append(paths, u.Path)
		}
		if issuer == "" {
			detail := "no profile's issuer is a URL with the path " + path
			if len(paths) > 0 {
				slices.Sort(paths)
				detail += "; the issuer paths are " + strings.Join(slices.Compact(paths), ", ")
			} else {
				detail += "; the document of the default profile's issuer is at /.well-known/openid-configuration"
			}
			return withDetail(errUnknownIssuer, detail)
		}
	}
	if issuer == "" {
		return errNoIssuer
	}
	base := url.URL{Scheme: "http", Host: r.Host}
	if r.TLS != nil {
		base.Scheme = "https"
	}
	if u, ok := issuerURL(issuer); ok {
		base = url.URL{Scheme: u.Scheme, Host: u.Host}
	}
	base.Path = "/.well-known/jwks.json"
	return writeJSON(w, http.StatusOK, discoveryDocument{
		Issuer:                 issuer,
		JWKSURI:                base.String(),
		ResponseTypesSupported: []string{"id_token"},
		SubjectTypesSupported:  []string{"public"},
		SigningAlgs:            jwksAlgs(svc.JWKS()),
	})
}

// issuerURL parses an issuer that is an http or https URL.
func issuerURL(issuer string) (*url.URL, bool) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, false
	}
	return u, true
}

// jwksAlgs lists the algorithms of a JWKS's keys: what verifiers that
// accept only the advertised algorithms (go-oidc) need.
func jwksAlgs(jwks []byte) []string {
	var set struct {
		Keys []struct {
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	algs := []string{}
	if json.Unmarshal(jwks, &set) != nil {
		return algs
	}
	for _, k := range set.Keys {
		if k.Alg != "" && !slices.Contains(algs, k.Alg) {
			algs = append(algs, k.Alg)
		}
	}
	slices.Sort(algs)
	return algs
}
