//! A real S3-compatible server in the test process: s3s with s3s-fs on 127.0.0.1,
//! checking SigV4 (headers and presigned URLs: signature, signed headers, expiry)
//! with one key pair. The app reaches it path-style.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use inbox_gateway::config::Settings;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::path::PathBuf;

pub const ACCESS_KEY: &str = "AKIAFAKES3TESTKEY";
pub const SECRET_KEY: &str = "fake-s3-secret-key-of-the-tests";
pub const BUCKET: &str = "inbox-files";

pub struct FakeS3 {
    /// `http://127.0.0.1:{port}`.
    pub endpoint: String,
    /// The files s3s-fs keeps (one directory per bucket).
    pub root: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl FakeS3 {
    pub async fn start() -> Self {
        let root = std::env::temp_dir().join(format!("fake-s3-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(root.join(BUCKET)).expect("the bucket directory");
        let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake S3");
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        FakeS3 {
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
            task,
        }
    }

    /// Points the app's storage at this server.
    pub fn configure(&self, s: &mut Settings) {
        s.s3_bucket = Some(BUCKET.into());
        s.s3_region = "us-east-1".into();
        s.s3_endpoint = Some(self.endpoint.clone());
        s.s3_force_path_style = true;
        s.s3_access_key_id = Some(ACCESS_KEY.into());
        s.s3_secret_access_key = Some(SECRET_KEY.into());
    }

    /// Whether the bucket holds `key`.
    pub fn has(&self, key: &str) -> bool {
        self.root.join(BUCKET).join(key).is_file()
    }
}
