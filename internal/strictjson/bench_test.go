package strictjson

import "testing"

// BenchmarkCheckObject is the check every token header and claims set, and
// every JSON request body, goes through.
func BenchmarkCheckObject(b *testing.B) {
	claims := []byte(`{"iss":"cust","iat":1795435190,"exp":1795435280,"phn":"+14155552671","xid":"tx-1","jti":"0123456789abcdef0123456789abcdef"}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckObject(claims, 16); err != nil {
			b.Fatal(err)
		}
	}
}
