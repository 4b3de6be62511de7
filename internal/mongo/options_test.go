package mongo

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/testservice"
)

// A replica-set URI's options reach the driver, under the store's own
// write concern, read preference, retries and timeouts.
func TestClientOptions(t *testing.T) {
	co, err := clientOptions("mongodb://a:27017,b:27017,c:27017/jwtd?replicaSet=rs0&appName=jwtd-eu&maxPoolSize=40"+
		"&w=majority&journal=true&retryWrites=true&readPreference=primary&serverSelectionTimeoutMS=30000&timeoutMS=60000", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(co.Hosts, " ") != "a:27017 b:27017 c:27017" || *co.ReplicaSet != "rs0" || *co.AppName != "jwtd-eu" || *co.MaxPoolSize != 40 {
		t.Errorf("the URI's options: hosts %v, replicaSet %v, appName %v, maxPoolSize %v", co.Hosts, *co.ReplicaSet, *co.AppName, *co.MaxPoolSize)
	}
	if co.WriteConcern.W != "majority" || co.WriteConcern.Journal == nil || !*co.WriteConcern.Journal {
		t.Errorf("write concern %+v", co.WriteConcern)
	}
	if co.ReadPreference.Mode() != readpref.PrimaryMode || !*co.RetryWrites {
		t.Errorf("read preference %s, retryWrites %v", co.ReadPreference.Mode(), *co.RetryWrites)
	}
	// store.timeout bounds every operation and the wait for a primary.
	if *co.Timeout != 2*time.Second || *co.ServerSelectionTimeout != 2*time.Second {
		t.Errorf("timeout %s, server selection %s; want store.timeout", *co.Timeout, *co.ServerSelectionTimeout)
	}
	if co, _ := clientOptions("mongodb://a/jwtd", time.Minute); *co.ServerSelectionTimeout != serverSelectionTimeout {
		t.Errorf("server selection %s with a long store.timeout", *co.ServerSelectionTimeout)
	}
}

// A URI asking for less than the store promises is refused, saying what
// to remove and why.
func TestClientOptionsRefused(t *testing.T) {
	for query, want := range map[string]string{
		"w=1":                             "remove w=1 (jwtd writes with w=majority",
		"w=0":                             "remove w=0",
		"w=2":                             "remove w=2",
		"w=dc1":                           "remove w=dc1",
		"journal=false":                   "remove journal=false (jwtd writes journaled",
		"w=majority&journal=false":        "remove journal=false",
		"readPreference=secondary":        "readPreference=secondary (jwtd reads from the primary",
		"readPreference=nearest":          "readPreference=nearest",
		"readPreference=primaryPreferred": "readPreference=primaryPreferred",
		"retryWrites=false":               "retryWrites=false (jwtd retries a commit",
		"w=1&retryWrites=false":           "w=1 (jwtd writes with w=majority: a token handed out must survive the loss of the primary); retryWrites=false",
	} {
		_, err := clientOptions("mongodb://a:27017/jwtd?"+query, time.Second)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "store.url: ") {
			t.Errorf("%s: %v, want %q", query, err, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if _, err := Open(ctx, "mongodb://127.0.0.1:1/jwtd?"+query, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open %s: %v", query, err)
		}
		cancel()
	}
}

// Against a real server: a store opened with a replica-set URI's options
// works; one naming a replica set the server is not part of finds no
// primary, and says so within store.timeout: the replicaSet option
// reached the driver, and the wait for a primary is bounded.
func TestURIOptionsReachTheServer(t *testing.T) {
	base := testservice.MongoURL(t)
	s := open(t, base, Options{})
	uri := strings.TrimSuffix(base, "/") + "/" + s.tokens.Database().Name() +
		"?appName=jwtd-test&maxPoolSize=4&w=majority&journal=true&retryWrites=true&readPreference=primary"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opened, err := Open(ctx, uri, Options{GroupOptions: record.GroupOptions{Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	r := &record.Record{JTI: "opt-" + s.tokens.Database().Name(), Profile: "p", Kid: "k", Alg: "ES256", XID: "x-opt", Phone: "+14155552671",
		Issued: time.Now().UTC(), Expires: time.Now().Add(time.Hour).UTC(), TokenSHA256: "h"}
	if err := opened.Insert(ctx, r); err != nil {
		t.Fatalf("insert with the URI's options: %v", err)
	}
	if got, err := s.ByJTI(ctx, r.JTI); err != nil || got.XID != "x-opt" {
		t.Errorf("read back through another client: %+v %v", got, err)
	}

	const storeTimeout = time.Second
	start := time.Now()
	_, err = Open(ctx, strings.TrimSuffix(base, "/")+"/jwtdnors?replicaSet=jwtd-no-such-set", Options{GroupOptions: record.GroupOptions{Timeout: storeTimeout}})
	took := time.Since(start)
	t.Logf("a replica set the server is not part of: %s, after %s", err, took.Round(time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "server selection") {
		t.Errorf("opened, or failed otherwise: %v", err)
	}
	if took > storeTimeout+2*time.Second {
		t.Errorf("waited %s for a primary with store.timeout %s", took, storeTimeout)
	}
}

// The indexes the store makes work on collections sharded as docs/ha.md
// says (tokens on hashed _id, the jti; xids on _id, the XID): a unique
// index on a sharded collection must start with the shard key, so none is
// unique but _id's, and every filter of a single-document write names _id.
func TestIndexesShardable(t *testing.T) {
	s := open(t, testservice.MongoURL(t), Options{Retention: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []string{"tokens", "xids", "keyrings"} { // key_history has _id's alone
		cur, err := s.tokens.Database().Collection(c).Indexes().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var specs []bson.M
		if err := cur.All(ctx, &specs); err != nil {
			t.Fatal(err)
		}
		if len(specs) < 2 {
			t.Errorf("%s: %d indexes", c, len(specs))
		}
		for _, spec := range specs {
			if unique, _ := spec["unique"].(bool); unique && spec["name"] != "_id_" {
				t.Errorf("%s: index %v is unique: a sharded collection cannot have it unless it starts with the shard key", c, spec["name"])
			}
		}
	}
}
