package main

// `issuer keys …`: list, rotate and revoke signing keys through the admin
// API.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/issuer-oauth/issuer/internal/adminapi"
)

var keysGroup = adminGroup{
	name:   "keys",
	doc:    "Manage the token signing keys of a running issuer through its admin API.",
	idName: "kid",
	commands: []adminCommand{
		{
			name:    "list",
			summary: "list the signing keys, their states (next, current, retired) and dates",
			bind:    bindKeysList,
		},
		{
			name:     "rotate",
			synopsis: "[--in DURATION]",
			summary:  "emergency rotation: a new key signs tokens at once (--in: a next key that starts signing later)",
			bind:     bindKeysRotate,
		},
		{
			name:    "revoke",
			summary: "remove a (compromised) key at once; every token it signed stops being valid",
			takesID: true,
			bind:    bindKeysRevoke,
		},
		{
			name:    "secret",
			summary: "print an HS256 key's shared secret as a JWK, for resource APIs",
			takesID: true,
			bind:    bindKeysSecret,
		},
	},
}

func bindKeysList(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, _ string) error {
		keys, err := a.api.ListKeys(ctx)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(adminapi.KeyList{Keys: keys})
		}
		if len(keys) == 0 {
			fmt.Fprintln(a.stderr, "The issuer has no signing keys yet: they are generated when it first starts.")
			return nil
		}
		files := slices.ContainsFunc(keys, func(k adminapi.Key) bool { return k.File != "" })
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		header := "KID\tALG\tSTATE\tNOT_BEFORE\tRETIRES_AT\tREMOVED_AT"
		if files {
			header += "\tFILE"
		}
		fmt.Fprintln(tw, header)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s", cell(k.KID), cell(k.Alg), cell(k.State),
				cell(adminapi.FormatTime(k.NotBefore)), cell(adminapi.FormatTime(k.RetiresAt)), cell(adminapi.FormatTime(k.RemovedAt)))
			if files {
				fmt.Fprintf(tw, "\t%s", cell(k.File))
			}
			fmt.Fprintln(tw)
		}
		return tw.Flush()
	}
}

func bindKeysRotate(fs *flag.FlagSet) runFunc {
	in := fs.Duration("in", 0, "schedule instead: the new key is published now and starts signing after this `duration` (at least 2 × the server's jwks_max_age), e.g. 24h")
	return func(ctx context.Context, a *adminCLI, _ string) error {
		var req adminapi.RotateKeyRequest
		if *in < 0 {
			return usageErrorf("invalid --in %s: use a positive duration such as 24h", *in)
		}
		if *in > 0 {
			nb := time.Now().Add(*in).UTC().Truncate(time.Second)
			req.NotBefore = &nb
		}
		k, err := a.api.RotateKey(ctx, req)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(k)
		}
		if k.KID == "" {
			return errors.New("the issuer's answer has no kid: check that the CLI and the server are the same version")
		}
		if *in > 0 {
			_, err = fmt.Fprintf(a.stdout, "kid: %s\nKey %s (%s) is published now and starts signing at %s.\n",
				clean(k.KID), clean(k.KID), clean(k.Alg), adminapi.FormatTime(k.NotBefore))
			if err == nil && k.Alg == "HS256" {
				fmt.Fprintf(a.stderr, "Give its secret to every resource API before then: issuer keys secret %s\n", clean(k.KID))
			}
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "kid: %s\nKey %s (%s) signs new tokens from now on; the previous key stays in the JWKS until the tokens it signed expire.\n",
			clean(k.KID), clean(k.KID), clean(k.Alg))
		if err == nil && k.Alg == "HS256" {
			fmt.Fprintf(a.stderr, "Resource APIs reject its tokens until they have its secret: issuer keys secret %s\n", clean(k.KID))
		}
		return err
	}
}

func bindKeysRevoke(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, kid string) error {
		resp, err := a.api.RevokeKey(ctx, kid)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(resp)
		}
		if resp.Current.KID == "" {
			return errors.New("the issuer's answer has no current kid: check that the CLI and the server are the same version")
		}
		_, err = fmt.Fprintf(a.stdout, "revoked: %s\ncurrent: %s\nKey %s is out of the JWKS, and the issuer no longer accepts its tokens (introspection says inactive). Resource APIs that cached the JWKS accept them until their cache expires (the JWKS max-age).\n",
			clean(kid), clean(resp.Current.KID), clean(kid))
		return err
	}
}

func bindKeysSecret(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, kid string) error {
		sec, err := a.api.KeySecret(ctx, kid)
		if err != nil {
			return err
		}
		if err := a.printJSON(sec); err != nil {
			return err
		}
		fmt.Fprintln(a.stderr, `This is the HS256 secret as a JWK ("k" is its base64url). Give it only to the resource APIs that verify tokens, over a secure channel; whoever has it can mint tokens.`)
		return nil
	}
}
