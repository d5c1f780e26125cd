package io.moe4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;

/**
 * Entry point of the {@code moe4j} command line. Subcommands live in their own classes; this class only wires
 * them and turns user mistakes into one clear line on stderr with a non-zero exit ({@code --debug} shows the
 * stack trace).
 */
@Command(name = "moe4j",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Sparse Mixture-of-Experts models for the JVM: build, train, inspect and serve MoE models.",
        subcommands = {DemoCommand.class, TrainCommand.class, ExperimentCommand.class, GenerateCommand.class,
                RunCommand.class, ChatCommand.class, ExportCommand.class, InspectCommand.class, LogitsCommand.class,
                QuantizeCommand.class,
                BenchCommand.class, InfoCommand.class,
                CommandLine.HelpCommand.class},
        commandListHeading = "%nCommands:%n",
        footer = {"", "Run 'moe4j help COMMAND' or 'moe4j COMMAND --help' for a command's options.",
                "Set -Dmoe4j.kernels=scalar in MOE4J_JAVA_OPTS to force the scalar kernels."})
public final class Main implements Runnable {

    @Option(names = "--debug", description = "Show full stack traces on errors.", scope = CommandLine.ScopeType.INHERIT)
    boolean debug;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI and returns the exit code (tests call this instead of {@link #main}). */
    public static int run(String... args) {
        CommandLine cl = new CommandLine(new Main());
        boolean debug = java.util.Arrays.asList(args).contains("--debug");
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            PrintWriter err = cmd.getErr();
            if (debug) {
                ex.printStackTrace(err);
            } else {
                err.println("moe4j: " + UserErrors.describe(ex));
                if (!(ex instanceof UserException)) err.println("(run with --debug for the stack trace)");
            }
            err.flush();
            return ex instanceof UserException ue ? ue.exitCode() : 1;
        });
        cl.setParameterExceptionHandler((ex, args1) -> {
            PrintWriter err = ex.getCommandLine().getErr();
            err.println("moe4j: " + ex.getMessage());
            err.println("Try '" + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help'.");
            err.flush();
            return 2;
        });
        return cl.execute(args);
    }

    /** Version from the jar manifest when packaged, else "dev". */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[]{"moe4j " + (v == null ? "dev" : v) + " on Java " + Runtime.version()};
        }
    }
}
