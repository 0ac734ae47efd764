//! Embedding videossm in an app: load a model, stream chunks of RGB frames into a
//! file, switch the prompt midway, snapshot the session and continue from it.
//!
//! `cargo run -p videossm --example stream -- [MODEL_DIR] [OUT.mp4]` (without a
//! folder, a small random model is written to a temporary one first).
use std::path::PathBuf;
use videossm::generate::FPS;
use videossm::output::{self, Target};
use videossm::{Pipeline, PipelineOptions, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = match args.next() {
        Some(d) => PathBuf::from(d),
        None => {
            let d = std::env::temp_dir().join("videossm-example-model");
            let mut cfg = videossm::synthetic::small_config();
            (cfg.dim, cfg.ffn_dim, cfg.num_heads, cfg.num_layers) = (64, 128, 4, 2);
            let gen = weights::GenerationConfig { latent_height: Some(8), latent_width: Some(8), ..Default::default() };
            videossm::synthetic::write_model_folder(&d, &cfg, &gen, &videossm::synthetic::small_vae_config(8, 16), true, 1)?;
            d
        }
    };
    let out = args.next().unwrap_or_else(|| "stream.mp4".into());

    let pipeline = Pipeline::load(&dir, &PipelineOptions::default())?;
    let (width, height) = pipeline.frame_size();
    let mut writer = output::open(&Target::parse(&out)?, width, height, FPS)?;
    let mut session = Session::new(&pipeline, "a red ball bouncing", 42)?;
    for chunk in 0..6 {
        if chunk == 3 {
            session.set_prompt("a blue ball rolling")?;
        }
        let c = session.next_frames()?;
        writer.write(&c.frames)?;
        println!("chunk {}: {} frames of {}x{} under {:?}", c.index, c.frames.len(), c.width, c.height, c.prompt);
    }
    // The state is constant in size: save it, and later continue the same video.
    let state = session.snapshot()?;
    let mut again = Session::restore(&pipeline, &state)?;
    writer.write(&again.next_frames()?.frames)?;
    writer.finish()?;
    println!("wrote {out}");
    Ok(())
}
