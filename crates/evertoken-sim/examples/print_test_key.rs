//! Prints the simulator's embedded test RSA private key (PEM) on stdout, for
//! `scripts/bench`: the shell refresh script and evertoken sign GitHub App JWTs
//! with it against `evertoken-sim --github-app-id N`. It is a published test
//! key, never a real credential.

fn main() {
    let (private, _public) = evertoken_sim::test_rsa_keypair();
    print!("{private}");
}
