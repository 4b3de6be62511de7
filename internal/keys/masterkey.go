package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/jwtd/jwtd/internal/secretfile"
)

// MasterKeyFile is where the embedded store's master key is made.
const MasterKeyFile = "master.key"

// MasterKeySource says where the master keys that seal the managed keys
// come from, in the order they are looked for: the JWTD_MASTER_KEY
// environment variable, key_store.master_key_file, and with the embedded
// store <data_dir>/master.key, which serve makes on its first start. With
// MongoDB, whose keys every instance shares, one of the first two is
// required.
type MasterKeySource struct {
	Env      string            // JWTD_MASTER_KEY's value
	File     string            // key_store.master_key_file, resolved against the configuration's directory
	Embedded string            // <data_dir>/master.key with the embedded store; "" with MongoDB
	Files    secretfile.Policy // how key files are read
	Create   bool              // make Embedded when it is missing (serve's first start)
}

// OpenSealer returns the sealer of the master keys src names, for the
// managed profiles named (which the message names when none is given).
func OpenSealer(src MasterKeySource, profiles []string) (*Sealer, error) {
	var masters [][]byte
	var err error
	switch {
	case src.Env != "":
		if masters, err = ParseMasterKeys(src.Env); err != nil {
			return nil, fmt.Errorf("JWTD_MASTER_KEY: %w", err)
		}
	case src.File != "":
		if masters, err = LoadMasterKeys(src.File, src.Files); err != nil {
			return nil, fmt.Errorf("key_store.master_key_file: %w", err)
		}
	case src.Embedded != "":
		masters, err = LoadOwnMasterKeys(src.Embedded, src.Files, src.Create)
		if errors.Is(err, fs.ErrNotExist) {
			abs, _ := filepath.Abs(src.Embedded)
			return nil, fmt.Errorf("no master key at %s (jwtd serve makes it on its first start): %w\n"+
				"Run this command with the server's configuration: the same --config (JWTD_CONFIG), or --data-dir (JWTD_DATA_DIR) naming its data directory", abs, err)
		}
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("the managed keys of profiles %s are kept in MongoDB, sealed under a master key that every instance "+
			"must share, and none was given: set JWTD_MASTER_KEY on every instance to one key made with "+
			"head -c 32 /dev/urandom | base64 (or name a file holding it in key_store.master_key_file)",
			strings.Join(profiles, ", "))
	}
	return NewSealer(masters...)
}
