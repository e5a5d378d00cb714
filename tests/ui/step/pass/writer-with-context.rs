use batch::prelude::*;

// A writer closure may take the chunk's write context as its second argument; it
// writes in the chunk's transaction and sees the live step context.
#[step(chunk = 2)]
fn copy() -> impl ChunkStep<i32, i32> {
    chunk(
        ListReader::new(vec![1, 2, 3]),
        processor(|n: &i32| Ok(Some(*n))),
        |items: &[i32], cx: &mut WriteContext<'_>| {
            let before = cx.step_context().get::<i64>("written")?.unwrap_or(0);
            cx.step_context().put("written", &(before + items.len() as i64))?;
            Ok(())
        },
    )
}

// Without a processor; `?` converts the writer's own errors.
#[step(chunk = 2)]
fn echo() -> impl ChunkStep<u8, u8> {
    read_write(ListReader::new(vec![1u8, 2]), |items: &[u8], _: &mut WriteContext<'_>| {
        std::str::from_utf8(items)?;
        Ok(())
    })
}

#[job]
fn copy_job() -> Flow {
    Flow::start(copy {}).next(echo {}).build()
}

#[tokio::main]
async fn main() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let execution = launcher.run(copy_job {}, JobParameters::new()).await.unwrap();
    assert_eq!(execution.status, BatchStatus::Completed);
    let copy = &execution.step_executions[0];
    assert_eq!(copy.counts.write, 3);
    assert_eq!(copy.context.get::<i64>("written").unwrap(), Some(3));
    assert_eq!(execution.step_executions[1].counts.write, 2);
}
