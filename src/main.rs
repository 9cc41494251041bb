//! `inbox-gateway`: serve (default), migrate, create-admin, seed, agentphone-import.

use clap::{Parser, Subcommand};

/// mimalloc: row and JSON shaping allocate a lot; glibc malloc was a third of the CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use inbox_gateway::app::{Application, StartError, Writers};
use inbox_gateway::domain::channel_accounts::AccountId;
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
        /// Messages spread over all the seeded conversations (for `messageSearchTerm`).
        #[arg(long, default_value_t = 0)]
        spread_messages: u64,
    },
    /// Import an AgentPhone account's conversations and messages; prints a report.
    /// Safe to run again (and while webhooks arrive): known messages are skipped.
    AgentphoneImport {
        /// The channel account's id.
        #[arg(long)]
        account: i64,
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
            spread_messages,
        } => {
            let conn = db::connect(&settings.database_url, 1)
                .await
                .map_err(StartError::Connect)?;
            db::migrate(&conn).await.map_err(StartError::Migrate)?;
            let started = std::time::Instant::now();
            let report =
                inbox_gateway::seed::seed(&conn, conversations, messages, spread_messages).await?;
            tracing::info!(seconds = started.elapsed().as_secs_f64(), "seeded");
            println!("{}", serde_json::json!(report));
            Ok(())
        }
        Command::AgentphoneImport { account } => import(&settings, account).await,
    }
}

/// Runs the import with a progress bar when stderr is a terminal (stdout is the report).
async fn import(settings: &Settings, account: i64) -> Result<(), StartError> {
    use inbox_gateway::agentphone::import::{self, Progress};
    use std::io::IsTerminal;
    settings.validate().map_err(StartError::Config)?;
    let conn = db::connect(&settings.database_url, 2)
        .await
        .map_err(StartError::Connect)?;
    db::migrate(&conn).await.map_err(StartError::Migrate)?;
    let writers = Writers::build(settings, &conn)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    });
    let show = |p: Progress| {
        let Some(bar) = &bar else { return };
        if let Some(total) = p.conversations_total
            && bar.length() != Some(total)
        {
            bar.set_length(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} conversations, {msg} messages, {elapsed}",
                )
                .expect("a valid template"),
            );
        }
        bar.set_position(p.conversations_done);
        bar.set_message(p.messages.to_string());
    };
    let outcome = import::run(
        &writers.units,
        &writers.agentphone,
        AccountId(account),
        &show,
    )
    .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = outcome.map_err(StartError::Import)?;
    println!("{}", serde_json::json!(report));
    Ok(())
}
