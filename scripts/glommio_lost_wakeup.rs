//! Demonstration of the log writer's stall (not built by default): glommio 0.9's
//! `LocalExecutor::run` parks with its task runnable when the latency ring holds a completion as
//! `run_task_queues` starts: `need_preempt()` is true (the preempt timer armed by `poll_io` has
//! fired), so `run_task_queues` returns false without running anything, `park` consumes the
//! timer's completion, which wakes no task, and sleeps on the main ring, where nothing of the
//! task's is in flight. Nothing wakes it again. The preempt timer is 100 ms by default, so the
//! window is the time between `poll_io` and `run_task_queues`: nothing normally, but a SIGSTOP or
//! a starved CPU stretches it past 100 ms. A preempt timer of 1 us makes it certain:
//!
//!     mkdir -p examples && cp scripts/glommio_lost_wakeup.rs examples/ &&
//!     cargo build --release --example glommio_lost_wakeup &&
//!     target/release/examples/glommio_lost_wakeup 1       # stalls (exit 1 after 5 s)
//!     target/release/examples/glommio_lost_wakeup 100000  # 200 writes finish
//!
//! (The first `run`, the file's open, already stalls with 1 us.)
use std::time::{Duration, Instant};

fn main() {
    let preempt_us: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let rounds: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("glommio-lost-wakeup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("file");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 * 1024)
            .preempt_timer(Duration::from_micros(preempt_us))
            .make()
            .unwrap();
        let file = std::rc::Rc::new(ex.run(async {
            glommio::io::OpenOptions::new().read(true).write(true).create(true).dma_open(&path).await.unwrap()
        }));
        for round in 0..rounds {
            let f = file.clone();
            let started = Instant::now();
            ex.run(async move {
                let mut buffer = f.alloc_dma_buffer(4096);
                buffer.as_bytes_mut().fill(round as u8);
                f.write_at(buffer, 4096 * (round as u64 % 64)).await.unwrap();
            });
            done_tx.send((round, started.elapsed())).unwrap();
            // Blocked outside the executor between writes, as the log writer is in recv().
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let mut finished = 0;
    loop {
        match done_rx.recv_timeout(Duration::from_secs(5)) {
            Ok((_, elapsed)) => {
                finished += 1;
                if elapsed > Duration::from_millis(500) {
                    println!("write took {elapsed:?}");
                }
                if finished == rounds {
                    println!("preempt {preempt_us} us: all {rounds} writes finished");
                    break;
                }
            }
            Err(_) => {
                println!("preempt {preempt_us} us: write {finished} of {rounds} not finished after 5 s: the executor sleeps with its task runnable");
                std::process::exit(1);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
