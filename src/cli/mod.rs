//! The command line (clap): the server's options, `--help`, `--version`, and the inspection
//! subcommands (`dump-log`, `dump-snapshot`, `check`), ZooKeeper's zkTxnLogToolkit,
//! zkSnapShotToolkit and a dry-run recovery. clap is built without colour, so nothing it prints
//! carries escape codes.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::ServerOptions;

pub mod inspect;

/// The ZooKeeper release ringkeeper implements, for `--version` (a literal, as clap wants a
/// constant; a test keeps it equal to [`crate::fourlw::ZOOKEEPER_COMPAT_VERSION`]).
const VERSION_TEXT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (implements Apache ZooKeeper 3.9.3)"
);

#[derive(Debug, Parser)]
#[command(
    name = "ringkeeper",
    version = VERSION_TEXT,
    about = "A ZooKeeper-compatible coordination server",
    long_about = "A ZooKeeper-compatible coordination server. Without --config it runs \
                  standalone on 127.0.0.1:2181 with its data under ./data.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// A ZooKeeper zoo.cfg (also read: conf/java.env beside it, SERVER_JVMFLAGS, JVMFLAGS)
    #[arg(long, short = 'c', value_name = "ZOO_CFG")]
    pub config: Option<PathBuf>,
    /// zoo.cfg as a bare argument, as zkServer.sh passes it
    #[arg(value_name = "ZOO_CFG", conflicts_with = "config")]
    pub config_file: Option<PathBuf>,
    /// Client port (overrides zoo.cfg)
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Client address (overrides zoo.cfg)
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<IpAddr>,
    /// Data directory for snapshots and the transaction log (overrides zoo.cfg)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Cores serving clients (default: every core)
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
}

impl ServerArgs {
    pub fn options(&self) -> ServerOptions {
        ServerOptions {
            config: self.config.clone().or_else(|| self.config_file.clone()),
            port: self.port,
            bind: self.bind,
            data_dir: self.data_dir.clone(),
            cores: self.cores,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a transaction log segment, or every segment of a log directory, one record a
    /// line (what ZooKeeper's zkTxnLogToolkit prints)
    DumpLog {
        /// A `log.<zxid>` segment or a dataLogDir
        path: PathBuf,
        /// Also print each node's data (as text where it is printable, else hex)
        #[arg(long)]
        data: bool,
    },
    /// Print a snapshot: its header, sessions and every node with its Stat (what ZooKeeper's
    /// zkSnapShotToolkit prints)
    DumpSnapshot {
        /// A `snapshot.<zxid>` file
        path: PathBuf,
        /// Also print each node's data (as text where it is printable, else hex)
        #[arg(long)]
        data: bool,
    },
    /// Recover a data directory as a start would, without changing it, and report what it
    /// holds and what a start would repair; exits non-zero when a start would refuse it
    Check {
        /// The dataDir (snapshots; also the log unless --data-log-dir is given)
        data_dir: Option<PathBuf>,
        /// The dataLogDir, when the log lives apart
        #[arg(long, value_name = "DIR")]
        data_log_dir: Option<PathBuf>,
        /// Take dataDir and dataLogDir from this zoo.cfg
        #[arg(long, short = 'c', value_name = "ZOO_CFG", conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
    /// Write the state of a (stopped) server's data directory as an Apache ZooKeeper data
    /// directory: OUT/version-2/snapshot.<zxid> plus currentEpoch and acceptedEpoch, which
    /// ZooKeeper 3.5 to 3.9 starts from (rolling a migration back)
    ExportZookeeper {
        /// The dataDir (snapshots; also the log unless --data-log-dir is given)
        data_dir: Option<PathBuf>,
        /// The dataLogDir, when the log lives apart
        #[arg(long, value_name = "DIR")]
        data_log_dir: Option<PathBuf>,
        /// Take dataDir and dataLogDir from this zoo.cfg
        #[arg(long, short = 'c', value_name = "ZOO_CFG", conflicts_with = "data_dir")]
        config: Option<PathBuf>,
        /// ZooKeeper's dataDir to write (its version-2/ must hold no snapshot or log yet)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ringkeeper").chain(args.iter().copied()))
    }

    #[test]
    fn version_names_ringkeeper_and_the_zookeeper_it_implements() {
        assert!(VERSION_TEXT.contains(crate::fourlw::ZOOKEEPER_COMPAT_VERSION));
        let error = parse(&["--version"]).map(|_| ()).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::DisplayVersion);
        let text = error.to_string();
        assert!(text.starts_with("ringkeeper 0."), "{text}");
        assert!(text.contains("ZooKeeper 3.9.3"), "{text}");
        Cli::command().debug_assert();
    }

    #[test]
    fn the_existing_flags_and_the_bare_zoo_cfg_keep_working() {
        let cli = parse(&["--config", "z.cfg", "--port", "2182", "--bind", "127.0.0.2"])
            .unwrap_or_else(|error| panic!("{error}"));
        let options = cli.server.options();
        assert_eq!(options.config, Some(PathBuf::from("z.cfg")));
        assert_eq!(options.port, Some(2182));
        assert_eq!(options.bind, Some("127.0.0.2".parse().unwrap()));
        let cli = parse(&["conf/zoo.cfg", "--data-dir", "d", "--cores", "1"]).unwrap();
        let options = cli.server.options();
        assert_eq!(options.config, Some(PathBuf::from("conf/zoo.cfg")));
        assert_eq!(
            (options.data_dir, options.cores),
            (Some("d".into()), Some(1))
        );
        assert!(cli.command.is_none());
    }

    #[test]
    fn errors_name_the_bad_argument() {
        let error = parse(&["--port", "http"])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(error.contains("--port"), "{error}");
        let error = parse(&["--prot", "1"]).map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("--prot"), "{error}");
        let error = parse(&["--bind", "nowhere"])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(error.contains("--bind"), "{error}");
        assert!(!error.contains('\u{1b}'), "no colour codes: {error:?}");
    }

    #[test]
    fn subcommands_parse() {
        let cli = parse(&["dump-log", "data", "--data"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::DumpLog { data: true, .. })
        ));
        let cli = parse(&["check", "--config", "zoo.cfg"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Check {
                config: Some(_),
                ..
            })
        ));
        assert!(parse(&["check", "d", "--config", "z"]).is_err());
    }
}
