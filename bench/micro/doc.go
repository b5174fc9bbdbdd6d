// Package micro holds micro benchmarks that belong to no single package:
// the cost of serving the JWK Set and the metadata document through the
// issuer's real handler (internal/server: routing, headers, ETag, the JSON
// request log) next to a handler that writes the same static bytes, the
// reference of the 80 % target in BENCHMARKS.md. Run them with
//
//	go test -run '^$' -bench . -benchmem ./bench/micro
package micro
