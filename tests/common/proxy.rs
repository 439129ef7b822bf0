//! A TCP proxy on 127.0.0.1 that dies after forwarding a budget of request bytes: a server that
//! stops in the middle of a transfer, at a point that does not depend on timing.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    pub port: u16,
    budget: i64,
    left: Arc<AtomicI64>,
    dead: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Forwards to `upstream` until `budget` bytes of requests went through, then closes every
    /// connection and refuses new ones.
    pub fn start(upstream: SocketAddr, budget: i64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let dead = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let left = Arc::new(AtomicI64::new(budget));
        let (dead2, live2, left2) = (dead.clone(), live.clone(), left.clone());
        std::thread::spawn(move || {
            while !dead2.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                live2.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (dead3, live3, left3) = (dead2.clone(), live2.clone(), left2.clone());
                std::thread::spawn(move || pipe(client, server, Some((&left3, &dead3, &live3))));
                std::thread::spawn(move || pipe(s2, c2, None));
            }
            // Dropping the listener refuses new connections.
        });
        Proxy { port, budget, left, dead, live }
    }

    /// Request bytes forwarded so far.
    pub fn forwarded(&self) -> i64 {
        self.budget - self.left.load(Ordering::SeqCst)
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }
}

type Budget<'a> = (&'a AtomicI64, &'a AtomicBool, &'a Mutex<Vec<TcpStream>>);

fn pipe(mut from: TcpStream, mut to: TcpStream, budget: Option<Budget>) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((left, dead, live)) = budget
            && left.fetch_sub(n as i64, Ordering::SeqCst) - (n as i64) < 0
        {
            kill(dead, live);
            return;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn kill(dead: &AtomicBool, live: &Mutex<Vec<TcpStream>>) {
    dead.store(true, Ordering::SeqCst);
    for stream in live.lock().unwrap().drain(..) {
        let _ = stream.shutdown(Shutdown::Both);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        kill(&self.dead, &self.live);
    }
}
