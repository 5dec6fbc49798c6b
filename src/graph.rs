//! The wait-for graph: which thread is blocked waiting on which task, so that a wait that could
//! never end is refused (the caller turns [`Stuck`] into
//! [`TaskError::Deadlock`](crate::TaskError::Deadlock)) instead of hanging. It imports nothing
//! else of the crate: tasks are seen through [`WaitNode`], pools through [`PoolInfo`].
//!
//! Every thread gets a small id. A thread that blocks without a time limit on a task
//! ([`TaskHandle::join`](crate::TaskHandle::join), [`TaskHandle::result`](crate::TaskHandle::result))
//! first records "thread → task" here and checks, under the one graph lock, that the task can
//! still finish:
//! - a finished task can;
//! - a running task can if the thread running it can make progress: it is not blocked in such a
//!   wait, or it waits on a task that can finish;
//! - a queued task can if its pool may still start a thread, or some worker of its pool can make
//!   progress (or its pool is broken, which resolves it at once).
//!
//! A thread met twice on that walk closes a cycle and cannot make progress. Threads blocked in
//! anything else (a channel, a socket, a timed wait) count as able to progress, so the check never
//! reports a deadlock that is not one; it may miss one that goes through such a wait.
//!
//! Lock order: the graph lock, then a task's own lock (to read its state), then a pool's worker
//! list. Nothing takes the graph lock while holding a task's lock.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;

static NEXT_THREAD_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD_ID: Cell<u64> = const { Cell::new(0) };
    static POOL: RefCell<Option<Arc<PoolInfo>>> = const { RefCell::new(None) };
}

/// This thread's id in the graph, assigned on first use.
pub(crate) fn current_thread_id() -> u64 {
    THREAD_ID.with(|id| {
        if id.get() == 0 {
            id.set(NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed));
        }
        id.get()
    })
}

/// A fresh thread id, for a worker that is about to be spawned (see [`enter_worker`]).
pub(crate) fn new_thread_id() -> u64 {
    NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed)
}

/// Marks the current thread as worker `id` of `pool`. Called first thing on a worker thread.
pub(crate) fn enter_worker(id: u64, pool: &Arc<PoolInfo>) {
    THREAD_ID.with(|cell| cell.set(id));
    POOL.with(|p| *p.borrow_mut() = Some(pool.clone()));
}

/// `true` if the current thread is a worker of `pool`.
pub(crate) fn is_worker_of(pool: &Arc<PoolInfo>) -> bool {
    POOL.with(|p| {
        p.borrow()
            .as_ref()
            .is_some_and(|mine| Arc::ptr_eq(mine, pool))
    })
}

/// What the graph knows of one pool: its live workers, how many it may have, and whether it is
/// broken.
#[derive(Debug)]
pub(crate) struct PoolInfo {
    name: String,
    /// (thread id, thread name) of each worker that is alive or about to start.
    workers: Mutex<Vec<(u64, String)>>,
    max_workers: usize,
    broken: OnceLock<String>,
}

impl PoolInfo {
    pub(crate) fn new(name: String, max_workers: usize) -> Arc<PoolInfo> {
        Arc::new(PoolInfo {
            name,
            workers: Mutex::new(Vec::new()),
            max_workers,
            broken: OnceLock::new(),
        })
    }

    /// Records a worker that is about to start (or has just started) as thread `id`.
    pub(crate) fn add_worker(&self, id: u64, name: String) {
        self.workers().push((id, name));
    }

    fn workers(&self) -> MutexGuard<'_, Vec<(u64, String)>> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes a worker that has exited.
    pub(crate) fn remove_worker(&self, id: u64) {
        self.workers().retain(|(w, _)| *w != id);
    }

    /// Marks the pool broken; the first reason wins. Returns `true` for the first call.
    pub(crate) fn set_broken(&self, why: String) -> bool {
        self.broken.set(why).is_ok()
    }

    /// Why the pool is broken, if it is.
    pub(crate) fn broken(&self) -> Option<String> {
        self.broken.get().cloned()
    }

    fn thread_name(&self, id: u64) -> Option<String> {
        self.workers()
            .iter()
            .find(|(w, _)| *w == id)
            .map(|(_, name)| name.clone())
    }
}

/// Where a task stands, as the graph sees it.
pub(crate) enum NodeStatus {
    Done,
    Running(u64),
    Queued(Option<Arc<PoolInfo>>),
}

/// A task, seen by the graph without its result type.
pub(crate) trait WaitNode: Send + Sync {
    fn id(&self) -> u64;
    fn status(&self) -> NodeStatus;
    fn pool(&self) -> Option<&Arc<PoolInfo>>;
}

/// One blocked thread: what it waits on, and its name for reports.
struct Waiting {
    on: Arc<dyn WaitNode>,
    name: String,
}

fn graph() -> MutexGuard<'static, HashMap<u64, Waiting>> {
    static GRAPH: OnceLock<Mutex<HashMap<u64, Waiting>>> = OnceLock::new();
    GRAPH
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Why a wait was refused: the chain of threads and tasks that can never move, in words.
#[derive(Debug)]
pub(crate) struct Stuck(pub(crate) String);

/// The current thread's entry in the graph while it blocks; removed on drop.
pub(crate) struct Registration {
    thread: u64,
}

impl Registration {
    /// Records that the current thread is about to block on `task`.
    ///
    /// # Errors
    ///
    /// [`Stuck`], naming the chain, if the task could never finish while this thread waits on
    /// it. Nothing is recorded then.
    pub(crate) fn new(task: Arc<dyn WaitNode>) -> Result<Registration, Stuck> {
        let thread = current_thread_id();
        let name = thread::current()
            .name()
            .map_or_else(|| format!("thread #{thread}"), str::to_owned);
        let mut graph = graph();
        graph.insert(
            thread,
            Waiting {
                on: task.clone(),
                name: name.clone(),
            },
        );
        let mut walk = Walk {
            graph: &graph,
            seen: vec![thread],
        };
        if let Some(chain) = walk.stuck(&*task) {
            graph.remove(&thread);
            return Err(Stuck(format!(
                "{name} would wait on {}",
                chain.join(", which waits on ")
            )));
        }
        Ok(Registration { thread })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        graph().remove(&self.thread);
    }
}

/// A depth-first search for progress. `seen` holds the threads on the current path and those
/// already found stuck; meeting one again means "stuck" (a cycle, or a known dead end).
struct Walk<'a> {
    graph: &'a HashMap<u64, Waiting>,
    seen: Vec<u64>,
}

impl Walk<'_> {
    /// `None` if `task` can still finish; otherwise the chain of reasons it cannot.
    fn stuck(&mut self, task: &dyn WaitNode) -> Option<Vec<String>> {
        match task.status() {
            NodeStatus::Done => None,
            NodeStatus::Running(runner) => {
                let here = format!("task {} running on {}", task.id(), self.name(task, runner));
                let mut chain = self.thread_stuck(runner)?;
                chain.insert(0, here);
                Some(chain)
            }
            NodeStatus::Queued(None) => None,
            NodeStatus::Queued(Some(pool)) => {
                if pool.broken().is_some() {
                    return None;
                }
                let workers: Vec<u64> = pool.workers().iter().map(|(w, _)| *w).collect();
                // A pool that may still start a thread (started on demand, or rayon's, which
                // registers them from inside the threads as they start) is not stuck: the new
                // thread can take the task.
                if workers.len() < pool.max_workers {
                    return None;
                }
                for worker in &workers {
                    self.thread_stuck(*worker)?;
                }
                let whose = match workers.len() {
                    1 => "whose only worker is blocked".to_owned(),
                    n => format!("whose {n} workers are all blocked"),
                };
                Some(vec![format!(
                    "task {} queued on {}, {whose}",
                    task.id(),
                    pool.name
                )])
            }
        }
    }

    /// `None` if `thread` can make progress; otherwise why not (empty when it closes a cycle).
    fn thread_stuck(&mut self, thread: u64) -> Option<Vec<String>> {
        if self.seen.contains(&thread) {
            return Some(Vec::new());
        }
        self.seen.push(thread);
        let waiting = self.graph.get(&thread)?;
        self.stuck(&*waiting.on)
    }

    fn name(&self, task: &dyn WaitNode, thread: u64) -> String {
        task.pool()
            .and_then(|p| p.thread_name(thread))
            .or_else(|| self.graph.get(&thread).map(|w| w.name.clone()))
            .unwrap_or_else(|| format!("thread #{thread}"))
    }
}
