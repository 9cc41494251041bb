//! `inbox-gateway`: serve (default), migrate, create-admin.

use clap::{Parser, Subcommand};

/// mimalloc: row and JSON shaping allocate a lot; glibc malloc was a third of the CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use inbox_gateway::app::{Application, StartError};
use inbox_gateway::{config::Settings, db, telemetry};

#[derive(Parser)]
#[command(version, about = "Feathers-style backend for multi-channel inboxes")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an organization and its first admin; prints their ids.
    CreateAdmin {
        #[arg(long)]
        organization: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// Seed a benchmark organization with N contacts and conversations; prints its admin login.
    Seed {
        #[arg(long, default_value_t = 10_000)]
        conversations: u64,
        /// Messages to put in the first seeded conversation.
        #[arg(long, default_value_t = 0)]
        messages: u64,
    },
}

#[actix_web::main]
async fn main() {
    telemetry::init();
    if let Err(error) = run(Cli::parse()).await {
        let message = error.chain();
        tracing::error!("{message}");
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), StartError> {
    let settings = Settings::load().map_err(StartError::Config)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(&settings).await?;
            tracing::info!(address = %format!("http://{}:{}", settings.host, app.port()), env = %settings.env, "listening");
            app.run_until_stopped().await.map_err(StartError::Serve)
        }
        Command::Migrate => {
            let conn = db::connect(&settings.database_url, 1)
                .await
                .map_err(StartError::Connect)?;
            db::migrate(&conn).await.map_err(StartError::Migrate)?;
            println!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin {
            organization,
            email,
            password,
        } => {
            let conn = db::connect(&settings.database_url, 1)
                .await
                .map_err(StartError::Connect)?;
            db::migrate(&conn).await.map_err(StartError::Migrate)?;
            let (org, user) =
                inbox_gateway::admin::create_admin(&conn, &organization, &email, &password).await?;
            println!(
                "{}",
                serde_json::json!({ "organization_id": org, "user_id": user })
            );
            Ok(())
        }
        Command::Seed {
            conversations,
            messages,
        } => {
            let conn = db::connect(&settings.database_url, 1)
                .await
                .map_err(StartError::Connect)?;
            db::migrate(&conn).await.map_err(StartError::Migrate)?;
            let started = std::time::Instant::now();
            let report = inbox_gateway::seed::seed(&conn, conversations, messages).await?;
            tracing::info!(seconds = started.elapsed().as_secs_f64(), "seeded");
            println!("{}", serde_json::json!(report));
            Ok(())
        }
    }
}
