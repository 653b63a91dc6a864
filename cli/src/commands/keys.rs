//! Signed snapshots: `tollgate keygen`, `sign` and `verify`.

use std::io::{Read, Write};

use tollgate::engine::Snapshot;
use tollgate::sync::signed::{self, KeyPair, Opened, PublicKey, KEY_LEN};

use crate::fail::{read, read_json, Fail};

/// Makes an Ed25519 key pair from 32 bytes of /dev/urandom.
#[derive(clap::Args)]
pub struct Keygen {
    /// Write the key file there (mode 0600, never overwritten) and print only its public half
    #[arg(long, value_name = "KEY.json")]
    out: Option<String>,
    /// The key's id (default: derived from the public key)
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
}

impl Keygen {
    /// Without `--out` the key file's JSON goes to stdout; with it, the file is created and only
    /// the public half is printed.
    pub fn run(self) -> Result<u8, Fail> {
        let mut seed = [0u8; KEY_LEN];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .map_err(|e| Fail::input(format!("cannot read 32 random bytes from /dev/urandom: {e}")))?;
        let pair = KeyPair::from_seed(&seed, self.key_id.as_deref()).map_err(|e| Fail::flag("key-id", &e))?;
        let text = serde_json::to_string_pretty(&pair.to_value())?;
        let Some(out) = self.out else {
            println!("{text}");
            return Ok(0);
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&out).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Fail::input(format!("{out} already exists; keygen never overwrites a key"))
            }
            _ => Fail::input(format!("cannot create {out}: {e}")),
        })?;
        file.write_all(format!("{text}\n").as_bytes()).map_err(|e| Fail::input(format!("cannot write {out}: {e}")))?;
        let public = serde_json::json!({ "keyId": pair.key_id, "publicKey": pair.public_key().to_base64() });
        println!("{}", serde_json::to_string_pretty(&public)?);
        Ok(0)
    }
}

/// Signs a valid snapshot: prints its signed envelope.
#[derive(clap::Args)]
pub struct Sign {
    /// The key file (as `keygen` writes it)
    #[arg(long, value_name = "KEY.json")]
    key: String,
    /// The snapshot to sign
    #[arg(value_name = "SNAPSHOT.json")]
    snapshot: String,
}

impl Sign {
    /// Checks that the file is a valid snapshot, then prints the envelope of its exact bytes.
    pub fn run(self) -> Result<u8, Fail> {
        let pair = KeyPair::from_value(&read_json(&self.key)?).map_err(|e| Fail::file(&self.key, &e))?;
        let path = &self.snapshot;
        let text = read(path)?;
        let value = tollgate::json::parse(&text).map_err(|e| Fail::file(path, &e))?;
        if signed::is_envelope(&value) {
            return Err(Fail::input(format!("{path} is a signed envelope already; sign the snapshot itself")));
        }
        Snapshot::from_value(&value).map_err(|problems| Fail::snapshot(path, &problems))?;
        println!("{}", pair.seal(text.as_bytes()));
        Ok(0)
    }
}

/// Checks a signed snapshot against a public key.
#[derive(clap::Args)]
pub struct Verify {
    /// The public key: base64 of its 32 bytes
    #[arg(long, value_name = "BASE64")]
    public_key: String,
    /// The signed envelope
    #[arg(value_name = "SIGNED.json")]
    signed: String,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

impl Verify {
    /// Checks the envelope's signature, decodes its snapshot, prints the key id and version.
    pub fn run(self) -> Result<u8, Fail> {
        let key = PublicKey::parse(&self.public_key).map_err(|e| Fail::flag("public-key", &e))?;
        let path = &self.signed;
        let value = read_json(path)?;
        let Opened::Signed { envelope, .. } = signed::open(&value, Some(&key)).map_err(|e| Fail::file(path, &e))?
        else {
            return Err(Fail::input(format!("{path}: a signed snapshot was expected")));
        };
        let payload = signed::parse_payload(&envelope.payload).map_err(|e| Fail::file(path, &e))?;
        let snapshot = Snapshot::from_value(&payload)
            .map_err(|problems| Fail::snapshot(&format!("the payload of {path}"), &problems))?;
        if self.json {
            let out = serde_json::json!({ "keyId": envelope.key_id, "snapshotVersion": snapshot.snapshot_version });
            println!("{out}");
        } else {
            let by = envelope.key_id.map(|id| format!(" by key {id}")).unwrap_or_default();
            println!("{path}: valid signature{by}, snapshotVersion {}", snapshot.snapshot_version);
        }
        Ok(0)
    }
}
