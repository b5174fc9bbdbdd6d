// Package ratelimit limits abuse of the client-authenticated endpoints
// (token, introspection, revocation): failed client authentications per
// source address and per client id, and token requests per client (a quota);
// failed admin API authentications per source address;
// and the brute force RFC 6749 §4.3.2 asks the password grant to resist:
// failed password logins per username and per source address.
//
// The rules, chosen so that an attacker cannot lock a legitimate client out:
//
//   - Source address (strict). Once an address (an IPv4 address, or the /64
//     of an IPv6 address) has failed AddressFailures times in its window,
//     every client authentication from it is refused until the window ends,
//     without checking the credentials — the right secret included.
//   - Client id (looser). Once a client id has failed ClientFailures times in
//     its window, it is under attack: requests for it from an address that
//     has failed in its own window are refused without checking the
//     credentials, but an address with no failures is still checked, so the
//     legitimate client, which does not fail, keeps working.
//   - A successful authentication resets nothing: it would let an attacker who
//     also holds one valid client clear its own record.
//   - Requests refused by a limit are not counted as failures: the windows end
//     on time whatever the attacker keeps sending.
//   - Quota. A client may make QuotaPerMinute token requests per minute;
//     the next ones are refused until the minute, counted from its first
//     request, ends.
//   - Passwords. A username that has failed UserFailures logins in its
//     PasswordWindow is locked until the window ends (LockedUntil; an admin
//     may Unlock it): its logins fail, the right password included, with
//     the same answer as a wrong one. An address that has failed
//     PasswordAddressFailures logins is refused (429) until its window
//     ends. Locked or refused logins are not counted.
//   - Admin token. An address that has presented AdminFailures wrong admin
//     tokens in its Window is refused (429) for every admin call until the
//     window ends, the right token included; refused calls are not
//     counted. These counters are apart from the client-authentication
//     ones, so neither kind of failure blocks the other.
//
// Counters are fixed windows (see Counter) kept in memory for one instance,
// or in Redis, where every instance shares them. When the counters cannot be
// reached the limiter lets requests through (fails open) and logs it: the
// store the requests need is then usually unreachable as well.
//
// # Reads without a round trip
//
// Before every client authentication the limiter reads the counter of the
// source address, and almost every address has no failures. The Redis
// counter answers such a read with 0 without asking Redis when no instance
// has added to the key in its current window. It keeps a set of "hot" keys,
// each with the local time its window ends, filled by its own additions, by
// its reads that find a count, and by hints from the other instances: the script that starts a window (its
// first addition) publishes the key and its time to live on the channel
// prefix+"hot", in the same atomic step, and every instance subscribes to
// it. Reads of hot keys go to Redis, so counts and times left stay exact and
// shared. A token request with a quota always adds, so it always costs one
// round trip.
//
// Where a hint can be missed, the counter fails towards checking, that is
// towards reading Redis as if every key were hot:
//
//   - while the subscription is not established (startup, Redis down or
//     unreachable, reconnecting);
//   - for one window (the window of the read) after it is established, since
//     hints published before were lost: a key is then read from Redis until
//     one read finds it clean, after which the subscription reports any
//     addition to it (so a restarted instance pays one read per address, not
//     one per request);
//   - when the set is full (a bound against attackers with many addresses):
//     a hint that finds no room is dropped, and every key is hot until the
//     dropped key's window ends;
//   - after Close.
//
// What remains: a hint reaches the other instances after the delay of
// pub/sub delivery (well under a millisecond on a LAN), during which they
// answer 0, as they would for a request that reached Redis just before the
// failure. A subscription that breaks without its connection reporting it
// (a silent network failure) is found by an idle PING within two ping
// intervals (4 seconds); hints sent in that time are lost. The window of
// reads after (re)subscribing assumes that every instance uses the same
// window. An instance that does not publish (an older version, during a
// rolling upgrade), or a Redis user not allowed to PUBLISH or SUBSCRIBE to
// the channel (Redis ACL "&issuer:ratelimit:hot"), leaves additions
// unhinted; a failed PUBLISH is logged, a failed SUBSCRIBE makes every read
// go to Redis. Whatever the cause, a missed hint costs at most one more
// checked request per missed key (address or client id) at each instance
// that missed it, per window: when that request fails, the instance adds to
// the shared counter, learns the count from the reply, and reads the key
// from Redis from then on.
package ratelimit
