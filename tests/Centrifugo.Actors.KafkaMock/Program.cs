using System.Globalization;
using System.Runtime.InteropServices;
using Centrifugo.Actors.KafkaMock;
using Centrifugo.Actors.Testing.Kafka;

MockHostOptions options;
try
{
    options = MockHostOptions.Parse(args);
}
catch (FormatException e)
{
    await Console.Error.WriteLineAsync("kafka-mock: " + e.Message + "\n" + MockHostOptions.Usage);
    return 2;
}

using var cluster = KafkaMockCluster.Create(options.Brokers, options.RebalanceDelayMs);
foreach (var topic in options.Topics)
{
    cluster.CreateTopic(topic.Name, topic.Partitions);
}

var forwarders = new List<TcpForwarder>();
var bootstrap = cluster.Bootstrap;
if (options.Ports.Count > 0)
{
    // The bootstrap list is in broker id order (1..n).
    var mockPorts = cluster.Bootstrap.Split(',')
        .Select(hostPort => int.Parse(hostPort[(hostPort.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture))
        .ToArray();
    for (var id = 1; id <= options.Brokers; id++)
    {
        forwarders.Add(new TcpForwarder(options.Ports[id - 1], mockPorts[id - 1]));
        cluster.SetAdvertisedHostPort(id, "127.0.0.1", options.Ports[id - 1]);
    }

    bootstrap = string.Join(',', options.Ports.Select(p => "127.0.0.1:" + p.ToString(CultureInfo.InvariantCulture)));
}

if (options.BootstrapFile is { } file)
{
    await File.WriteAllTextAsync(file, bootstrap + "\n");
}

var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);

Console.WriteLine("BOOTSTRAP " + bootstrap);

// Console reads cannot be cancelled; a background thread lets the process exit while it is blocked.
var stdinThread = new Thread(() =>
{
    while (Console.ReadLine() is { } line)
    {
        line = line.Trim();
        if (line.Length == 0)
        {
            continue;
        }

        if (line == "quit")
        {
            Console.WriteLine("OK");
            stop.TrySetResult();
            return;
        }

        Console.WriteLine(ControlCommand.Execute(cluster, line));
    }

    // Without this flag a mock started by a crashed test process would outlive it.
    if (options.ExitOnStdinEof)
    {
        stop.TrySetResult();
    }
})
{ IsBackground = true, Name = "kafka-mock stdin" };
stdinThread.Start();

await stop.Task;
foreach (var forwarder in forwarders)
{
    await forwarder.DisposeAsync();
}

Console.WriteLine("STOPPED");
return 0;

void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    stop.TrySetResult();
}
