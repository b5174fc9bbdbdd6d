// Package deploytest checks the deployment files (Dockerfile, deploy/,
// Procfile, app.json) against the real issuer. It has no code outside its
// tests:
//
//   - the Dockerfiles are linted (pinned bases, a distroless or scratch
//     final stage running as a numeric non-root user, exec-form
//     ENTRYPOINT, CMD and HEALTHCHECK, no ADD of URLs, no secrets in ENV),
//     and their build stage runs outside Docker, as a script, on a copy of
//     the tree filtered by .dockerignore; the binary it makes must be
//     static and report the version the build passed it;
//   - deploy/compose.yaml, the Kubernetes manifests, the Procfile and
//     app.json are parsed, and every environment variable they set is
//     checked against the issuer's configuration (internal/config), every
//     probe and published path against a running issuer;
//   - the built issuer runs behind a real Nginx configured from
//     deploy/nginx/issuer.conf, two instances on a real redis-server
//     started with deploy/redis/redis.conf, with the example resource API
//     verifying the tokens: the client-credentials and refresh flows over
//     HTTPS and HTTP/2, the JWKS cache, the request limits and the security
//     headers;
//   - deploy/prometheus/alerts.yml passes promtool check rules and its unit
//     tests (alerts_test.yml), the queries of deploy/grafana/issuer.json
//     parse as PromQL, and both name only metrics the issuer exports.
//
// Nginx, redis-server and promtool must be installed (make test installs
// them). A
// missing nginx fails the tests unless ISSUER_SKIP_NGINX=1.
package deploytest
