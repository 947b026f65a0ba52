//! The one Meridian binary.
//!
//! - `meridian serve --service resolution`: one service against PostgreSQL and RabbitMQ.
//! - `meridian dev`: every service in one process on SQLite files under `./data`, with the
//!   in-process bus, migrations applied and a demo organisation seeded; prints the URL, the
//!   OpenAPI location and a ready-to-use token.
//! - `meridian migrate --service resolution`: applies the service's migrations (a Helm hook Job).
//! - `meridian token --sub alice --roles agent,change-manager`: prints a dev token.
//! - `meridian workflows validate [paths]`: checks workflow definitions, printing each problem
//!   as `file:line:column: message`; fails when there is any.
//! - `meridian audit verify [--checkpoints export.json]`: checks the audit ledger; names the
//!   first bad sequence number.
//! - `meridian evidence report [--from --to --format html]`: the ISO/IEC 20000-1 evidence report.

mod app;
mod console;
mod dev;
mod governance_cli;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "meridian",
    version,
    about = "Meridian: ISO/IEC 20000-1 service management"
)]
struct Cli {
    /// A YAML configuration file, read after the defaults and before MERIDIAN__* variables.
    #[arg(long, global = true, env = "MERIDIAN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one service against PostgreSQL and RabbitMQ.
    Serve {
        /// The service to run.
        #[arg(long, value_enum)]
        service: app::Service,
        /// Apply migrations before serving (otherwise run `meridian migrate` first).
        #[arg(long)]
        migrate: bool,
    },
    /// Runs every service in one process on SQLite with the in-process bus.
    Dev {
        /// Where the SQLite files and the dev secret live.
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
    },
    /// Applies a service's migrations to its database.
    Migrate {
        /// The service whose database to migrate.
        #[arg(long, value_enum)]
        service: app::Service,
    },
    /// Prints a dev token (HS256, signed with the dev secret).
    Token {
        /// Subject (user id).
        #[arg(long)]
        sub: String,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "agent")]
        roles: Vec<String>,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 8)]
        ttl_hours: i64,
        /// The `meridian dev` data folder whose secret signs the token (otherwise `auth.secret`).
        #[arg(long, default_value = "data")]
        data: PathBuf,
    },
    /// Workflow definitions.
    Workflows {
        #[command(subcommand)]
        command: WorkflowsCommand,
    },
    /// The audit ledger (the governance service's database).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The ISO/IEC 20000-1 evidence (the governance service's database).
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Loads and checks the configuration (defaults, --config, MERIDIAN__* variables) without
    /// starting anything; names the first bad key.
    CheckConfig,
    /// Asks each URL (e.g. a service's /readyz) and succeeds only when every one answers 2xx;
    /// `helm test` runs it (the image has no shell or curl).
    Probe {
        /// The URLs.
        #[arg(required = true)]
        urls: Vec<String>,
    },
}

/// `meridian probe`.
fn probe(urls: &[String]) -> anyhow::Result<()> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut failed = 0;
    for url in urls {
        match agent.get(url).call() {
            Ok(response) if response.status().is_success() => {
                println!("ok {url} {}", response.status());
            }
            Ok(response) => {
                failed += 1;
                println!("FAILED {url} {}", response.status());
            }
            Err(error) => {
                failed += 1;
                println!("FAILED {url} {error}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} did not answer 2xx", urls.len());
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Checks every link, hash and signature of the ledger and its checkpoints; names the first
    /// bad sequence number and exits non-zero when there is one.
    Verify {
        /// An export of the checkpoints kept outside the database (`GET /v1/ledger/checkpoints`):
        /// a cut tail is seen against it.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        #[command(flatten)]
        target: governance_cli::Target,
    },
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Prints the evidence report of a period (JSON, or HTML to print) with the readiness check.
    Report {
        /// From (RFC 3339; default a year before --to).
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// To (RFC 3339; default now).
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// `json` or `html`.
        #[arg(long, default_value = "json", value_parser = ["json", "html"])]
        format: String,
        #[command(flatten)]
        target: governance_cli::Target,
    },
}

#[derive(Debug, Subcommand)]
enum WorkflowsCommand {
    /// Checks definition files (folders: their .yaml files); exits non-zero on any problem.
    Validate {
        /// Files or folders.
        #[arg(default_value = "workflows")]
        paths: Vec<PathBuf>,
    },
}

fn validate_workflows(paths: &[PathBuf]) -> anyhow::Result<()> {
    use meridian_workflow::definition::files;
    let found = files::files(paths).context("reading the definitions")?;
    let (loaded, problems) = files::load_all(&found);
    for problem in &problems {
        eprintln!("{problem}");
    }
    if problems.is_empty() {
        for (file, compiled) in &loaded {
            println!(
                "ok {} {} ({})",
                compiled.definition.id,
                compiled.version,
                file.display()
            );
        }
        Ok(())
    } else {
        eprintln!("{} problem(s) in the workflow definitions", problems.len());
        std::process::exit(1)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Workflows {
        command: WorkflowsCommand::Validate { paths },
    } = &cli.command
    {
        return validate_workflows(paths);
    }
    if let Command::Probe { urls } = &cli.command {
        return probe(urls);
    }
    if let Command::CheckConfig = &cli.command {
        app::Config::load(cli.config.as_deref())?;
        println!("configuration valid");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { service, migrate } => {
                let config = app::Config::load(cli.config.as_deref())?;
                app::serve(config, service, migrate).await
            }
            Command::Dev { data, bind } => dev::run(cli.config.as_deref(), &data, &bind).await,
            Command::Migrate { service } => {
                let config = app::Config::load(cli.config.as_deref())?;
                app::migrate(&config, service).await
            }
            Command::Token {
                sub,
                roles,
                ttl_hours,
                data,
            } => {
                let token = dev::token(cli.config.as_deref(), &data, &sub, &roles, ttl_hours)?;
                println!("{token}");
                Ok(())
            }
            Command::Audit {
                command:
                    AuditCommand::Verify {
                        checkpoints,
                        target,
                    },
            } => {
                let config = governance_cli::config(cli.config.as_deref(), &target)?;
                governance_cli::verify(&config, &target, checkpoints.as_deref()).await
            }
            Command::Evidence {
                command:
                    EvidenceCommand::Report {
                        from,
                        to,
                        format,
                        target,
                    },
            } => {
                let config = governance_cli::config(cli.config.as_deref(), &target)?;
                governance_cli::report(&config, &target, from, to, format == "html").await
            }
            Command::Workflows { .. } | Command::CheckConfig | Command::Probe { .. } => Ok(()),
        }
    })
}
