// A recording stand-in for the globals Flamenco's Manager gives a job type script (`author`, `path`,
// `print`), enough to run a job type's compileJob under Node and see the tasks it authors.
// This checks the job type's logic (tasks, commands, dependencies), not a Flamenco Manager.
//
//   node flamenco_stand_in.mjs JOB_TYPE_FILE SETTINGS_JSON   → {"jobType": …, "tasks": […]} on stdout,
//                                                            or {"error": "…"} when compileJob throws.
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";

const [file, settingsJson] = process.argv.slice(2);
const printed = [];

class Task {
    constructor(name, type) {
        this.name = name;
        this.type = type;
        this.commands = [];
        this.dependencies = [];
    }
    addCommand(command) { this.commands.push(command); }
    addDependency(task) {
        if (!(task instanceof Task)) throw new Error("addDependency takes a Task");
        this.dependencies.push(task.name);
    }
}

const author = {
    Task: (name, type) => new Task(name, type),
    Command: (type, parameters) => ({ type, parameters }),
};
const job = {
    name: "kiln test job",
    created: new Date("2026-11-27T12:00:00Z"),
    settings: JSON.parse(settingsJson),
    tasks: [],
    addTask(task) {
        if (!(task instanceof Task)) throw new Error("addTask takes a Task");
        this.tasks.push(task);
    },
};
const context = vm.createContext({ author, path: path.posix, print: (...a) => printed.push(a.join(" ")), Number });
vm.runInContext(fs.readFileSync(file, "utf8"), context, { filename: file });
let output;
try {
    vm.runInContext("compileJob", context)(job);
    output = { jobType: vm.runInContext("JOB_TYPE", context), tasks: job.tasks, printed };
} catch (error) {
    output = { error: String(error) };
}
process.stdout.write(JSON.stringify(output));
