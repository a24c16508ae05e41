import t from 'tap'
import type { CloudInitData } from '../../server/cloudinit/data.js'
import { fromStored, toStored } from '../../server/cloudinit/stored.js'

t.test('four JSON columns and back, the Jinja flag included', async (t) => {
  const data: CloudInitData = {
    userdata: { runcmd: ['echo {{ v1.local_hostname }}'], write_files: [{ path: '/x', permissions: '0400', content: 'on' }] },
    metadata: { zone: 'a' },
    vendordata: { locale: 'C.UTF-8' },
    networkConfig: { version: 2, ethernets: { e: { match: { macaddress: '52:54:00:12:34:56' }, dhcp4: true } } },
    userdataJinja: true,
  }
  const stored = toStored(data)
  t.same(stored, {
    userData: JSON.stringify("## template: jinja\n#cloud-config\nruncmd:\n  - echo {{ v1.local_hostname }}\nwrite_files:\n  - path: /x\n    permissions: \"0400\"\n    content: \"on\"\n"),
    metaData: '{"zone":"a"}',
    vendorData: '{"locale":"C.UTF-8"}',
    networkConfig: '{"version":2,"ethernets":{"e":{"match":{"macaddress":"52:54:00:12:34:56"},"dhcp4":true}}}',
  })
  t.same(fromStored(stored, 'row'), { ok: true, data })
  t.same(toStored({}), { userData: null, metaData: null, vendorData: null, networkConfig: null })
  t.same(fromStored(toStored({}), 'row'), { ok: true, data: {} })
})

t.test('a bad row comes back as problems', async (t) => {
  t.match(fromStored({ userData: '{', metaData: null, vendorData: null, networkConfig: null }, 'cloud_init group compute'), { ok: false, problems: [{ where: 'cloud_init group compute', message: /^userdata: not JSON/ }] })
  t.match(fromStored({ userData: '"#!/bin/sh"', metaData: null, vendorData: null, networkConfig: null }, 'row'), { ok: false, problems: [{ where: 'row', message: /user-data is a script/ }] })
})
