package main

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"strings"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/config"
)

// apikeySynopsis names every scope a key can have.
var apikeySynopsis = "jwtd apikey create --name NAME --scopes " + strings.Join(apikey.Scopes(), ",")

var apikeyUsage = "Usage:\n  " + apikeySynopsis + "\n"

// cmdAPIKey makes an API key: the key itself, printed once, and the
// api_keys entry (its hash) to put in the configuration. While no api_keys
// are configured, the admin key made on first start is the one jwtd
// accepts, and configuring any would set it aside: the entry printed then
// comes with the admin key's, so that adding the block keeps both.
func cmdAPIKey(args []string, e env) error {
	sub, rest, err := subcommand(args, e, "apikey", apikeyUsage, "create")
	if sub == "" || err != nil {
		return err
	}
	fs := newFlagSet("jwtd apikey create", apikeySynopsis, e, "data_dir")
	name := fs.String("name", "", "the key's name, as logs and rate limits know it")
	scopes := fs.StringSlice("scopes", nil, "what the key may do, comma-separated: "+strings.Join(apikey.Scopes(), ", "))
	if help, err := parseFlagsNoArgs(fs, rest); help || err != nil {
		return err
	}
	if *name == "" || len(*scopes) == 0 {
		return usageError(fs, "give --name and --scopes")
	}
	plain, spec, err := apikey.New(*name, *scopes)
	if err != nil {
		return usageError(fs, err.Error())
	}
	cfg, err := config.Load(fs, e.getenv)
	if err != nil {
		return err
	}
	entries := []apikey.Spec{spec}
	admin, err := apikey.ReadAdmin(cfg.DataDir)
	keepAdmin := err == nil && len(cfg.APIKeys) == 0
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	if keepAdmin {
		entries = append([]apikey.Spec{admin}, entries...)
	}
	fmt.Fprintf(e.stdout, "%s\n", plain)
	fmt.Fprint(e.stderr, "The key above is shown only this once: give it to its holder as a bearer token.\n")
	switch {
	case keepAdmin:
		fmt.Fprintf(e.stderr, "No api_keys are configured, so jwtd accepts the admin key made on first start (%s).\n"+
			"Put this block in the configuration file (a new jwtd.yaml will do): its first entry keeps that admin key,\n"+
			"which api_keys would otherwise set aside. Then start jwtd with --config jwtd.yaml (make run ARGS=\"--config jwtd.yaml\"),\n"+
			"or reload one started with that file (kill -HUP).\n\napi_keys:\n", apikey.AdminFile(cfg.DataDir))
	default:
		fmt.Fprint(e.stderr, "Add this entry to api_keys in the configuration (it holds only the key's SHA-256), then reload (kill -HUP):\n\n")
	}
	for _, s := range entries {
		fmt.Fprintf(e.stderr, "  - {name: %s, sha256: %q, scopes: [%s]}\n", s.Name, s.SHA256, strings.Join(s.Scopes, ", "))
	}
	return nil
}
