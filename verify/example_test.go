package verify_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/issuer-oauth/issuer/verify"
)

// A resource API that discovers the issuer's keys and guards its routes
// with scopes.
func ExampleVerifier_Middleware() {
	v, err := verify.New(os.Getenv("ISSUER_URL"), "https://api.example.com")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/items", v.Middleware("read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := verify.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "items of %s\n", claims.ClientID)
	})))
	mux.Handle("POST /v1/items", v.Middleware("write")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})))
	log.Fatal(http.ListenAndServe(":8090", mux))
}

// Verifying a token outside net/http, telling failures apart.
func ExampleVerifier_Verify() {
	v, err := verify.New("https://auth.example.com", "https://api.example.com")
	if err != nil {
		log.Fatal(err)
	}
	claims, err := v.Verify(context.Background(), os.Getenv("TOKEN"))
	switch {
	case errors.Is(err, verify.ErrExpired):
		fmt.Println("get a new token")
	case err != nil:
		fmt.Println("rejected:", err)
	default:
		fmt.Println(claims.ClientID, claims.Scopes)
	}
}
