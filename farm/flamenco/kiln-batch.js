// SPDX-License-Identifier: GPL-3.0-or-later
//
// Kiln batch: a Flamenco custom job type that runs one Kiln manifest in N shards on the farm's
// Blender workers, then merges the shards into one .blend, report.json and contact sheet.
//
// Install: copy this file into the Flamenco Manager's `scripts/` folder (next to the Manager
// executable) and restart the Manager. Every Worker needs Blender and the Kiln checkout at the path
// given in "Kiln folder" (a shared drive, or the same path on each), and the manifest and output
// folder on shared storage.
//
// Each shard task runs
//   {blender} -b --python-exit-code 1 --python <kiln>/farm/flamenco/kiln_task.py -- MANIFEST --out OUT --shard I/N --resume
// which is `scripts/kiln_batch.py` with exit 1 ("finished, some jobs failed": a completed shard) turned
// into 0, so Flamenco does not fail the task and hold back the merge. --resume makes a re-queued or
// retried task continue from that shard's journal: nothing is generated twice. The merge task depends
// on every shard and runs `kiln_batch.py --merge OUT`.

const JOB_TYPE = {
    label: "Kiln Batch",
    description: "Generate, finish and export a Kiln batch manifest in shards, then merge them",
    settings: [
        { key: "manifest", type: "string", subtype: "file_path", required: true,
          description: "Kiln batch manifest (TOML), on storage every Worker can read" },
        { key: "shards", type: "int32", default: 4, required: true,
          description: "Number of shards: one task each, run in parallel on the Workers" },
        { key: "output_folder", type: "string", subtype: "dir_path", required: true,
          description: "Output folder; the batch is written to <output folder>/<batch name>/" },
        { key: "kiln_folder", type: "string", subtype: "dir_path", required: true,
          description: "The Kiln checkout on the Workers (holds scripts/kiln_batch.py)" },
        { key: "extra_args", type: "string", default: "", visible: "submission",
          description: "Extra kiln_batch flags for every shard, e.g. --online-mode --jobs 8" },
        { key: "blender_cmd", type: "string", default: "{blender}", visible: "hidden" },
    ],
};

const MAX_SHARDS = 10000;  // as kiln_batch's --shard I/N

function compileJob(job) {
    print("Kiln batch job:", job.name);
    const settings = job.settings;
    const shards = Number(settings.shards);
    if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
        throw `shards must be a whole number from 1 to ${MAX_SHARDS}, not ${settings.shards}`;
    }
    for (const key of ["manifest", "output_folder", "kiln_folder"]) {
        if (!settings[key]) {
            throw `the "${key}" setting is empty`;
        }
    }
    const entry = path.join(settings.kiln_folder, "farm", "flamenco", "kiln_task.py");
    const extra = splitArgs(settings.extra_args || "");

    const shardTasks = [];
    for (let index = 1; index <= shards; index++) {
        const task = author.Task(`kiln-shard-${index}-of-${shards}`, "blender");
        task.addCommand(kilnCommand(settings, entry, [
            settings.manifest, "--out", settings.output_folder, "--shard", `${index}/${shards}`, "--resume",
        ].concat(extra)));
        job.addTask(task);
        shardTasks.push(task);
    }

    const merge = author.Task("kiln-merge", "blender");
    merge.addCommand(kilnCommand(settings, entry, ["--merge", settings.output_folder]));
    for (const task of shardTasks) {
        merge.addDependency(task);
    }
    job.addTask(merge);
}

// Blender with no .blend file: Kiln's script does the work. `blender-render` is Flamenco's command for
// running Blender (it parses Blender's output for progress); --python-exit-code 1 makes an exception in
// the script fail the task instead of ending Blender with 0.
function kilnCommand(settings, entry, kilnArgs) {
    return author.Command("blender-render", {
        exe: settings.blender_cmd || "{blender}",
        exeArgs: "-b --factory-startup",
        argsBefore: [],
        blendfile: "",
        args: ["--python-exit-code", "1", "--python", entry, "--"].concat(kilnArgs),
    });
}

// Whitespace-separated flags, with "double quotes" for a value holding spaces.
function splitArgs(text) {
    const found = text.match(/"[^"]*"|\S+/g) || [];
    return found.map((arg) => (arg.startsWith('"') && arg.endsWith('"') ? arg.slice(1, -1) : arg));
}
