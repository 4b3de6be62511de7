package main

import (
	"fmt"
	"strings"

	"github.com/jwtd/jwtd/internal/apikey"
)

// apikeySynopsis names every scope a key can have.
var apikeySynopsis = "jwtd apikey create --name NAME --scopes " + strings.Join(apikey.Scopes(), ",")

var apikeyUsage = "Usage:\n  " + apikeySynopsis + "\n"

// cmdAPIKey makes an API key: the key itself, printed once, and the
// api_keys entry (its hash) to put in the configuration.
func cmdAPIKey(args []string, e env) error {
	sub, rest, err := subcommand(args, e, "apikey", apikeyUsage, "create")
	if sub == "" || err != nil {
		return err
	}
	fs := newFlagSet("jwtd apikey create", apikeySynopsis, e)
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
	fmt.Fprintf(e.stdout, "%s\n", plain)
	fmt.Fprintf(e.stderr, "The key above is shown only this once: give it to its holder as a bearer token.\n"+
		"Add this entry to api_keys in the configuration (it holds only the key's SHA-256), then reload (kill -HUP):\n\n"+
		"  - {name: %s, sha256: %q, scopes: [%s]}\n", spec.Name, spec.SHA256, strings.Join(spec.Scopes, ", "))
	return nil
}
